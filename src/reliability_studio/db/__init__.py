"""Database access: URLs, engine, declarative base and migrations."""

"""Test support: real components started by the tests, and API helpers."""

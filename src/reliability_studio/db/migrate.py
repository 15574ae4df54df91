"""Run Alembic migrations from code, for `serve` and `migrate`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from reliability_studio.config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic configuration pointing at the packaged migrations and `settings`' database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["settings"] = settings
    return config


def upgrade_to_head(settings: Settings) -> None:
    """Apply every migration that the database does not have yet."""
    command.upgrade(alembic_config(settings), "head")

"""Settings for command-line entry points: a short message instead of a traceback."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from reliability_studio.config import Settings


def load_settings() -> Settings:
    """The settings from the environment; a short message and exit code 2 when invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        ]
        typer.echo("error: invalid configuration\n" + "\n".join(lines), err=True)
        raise typer.Exit(code=2) from None

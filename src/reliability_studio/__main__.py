"""Allow `python -m reliability_studio`."""

from reliability_studio.cli import app

app()

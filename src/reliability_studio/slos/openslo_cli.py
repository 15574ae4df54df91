"""`reliability-studio slo import|export`: OpenSLO v1 YAML in and out of DATABASE_URL.

Plain functions with Typer annotations; cli.py registers them. They act on the default
organization, as the API does, and expect a migrated database (`reliability-studio migrate`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError

from reliability_studio.api.problems import ProblemError
from reliability_studio.cli_settings import load_settings
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from reliability_studio.slos.openslo import Export
from reliability_studio.slos.openslo_service import (
    ImportResult,
    export_openslo_report,
    import_openslo,
)

T = TypeVar("T")


def import_command(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="OpenSLO v1 YAML file (Service, SLI and SLO documents).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report what would change; write nothing.")
    ] = False,
) -> None:
    """Create or update services and SLOs from OpenSLO v1 YAML, all or nothing."""
    settings = load_settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {path}: {exc}", err=True)
        raise typer.Exit(code=1) from None
    result = _run(settings, _import(settings, text, dry_run))
    _print_import(result)


def export_command(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, help="Write to this file instead of stdout."
        ),
    ] = None,
) -> None:
    """Write every SLO as OpenSLO v1 YAML (to stdout by default)."""
    settings = load_settings()
    export = _run(settings, _export(settings))
    if output is None:
        typer.echo(export.text, nl=False)
    else:
        try:
            output.write_text(export.text, encoding="utf-8")
        except OSError as exc:
            typer.echo(f"error: cannot write {output}: {exc}", err=True)
            raise typer.Exit(code=1) from None
    where = f" to {output}" if output is not None else ""
    typer.echo(f"exported {export.exported} SLO(s){where}", err=True)
    for item in export.not_exported:
        typer.echo(
            f"not exportable: {item.name!r} of service {item.service!r}: {item.reason}", err=True
        )


async def _import(settings: Settings, text: str, dry_run: bool) -> ImportResult:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return await import_openslo(session, DEFAULT_ORGANIZATION_ID, text, dry_run=dry_run)
    finally:
        await engine.dispose()


async def _export(settings: Settings) -> Export:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return await export_openslo_report(session, DEFAULT_ORGANIZATION_ID)
    finally:
        await engine.dispose()


def _run(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; a refused upload or an unusable database ends with a message, exit 1."""
    try:
        return asyncio.run(work)
    except ProblemError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        if exc.errors and len(exc.errors) > 1:
            for error in exc.errors:
                typer.echo(f"  {error.message}", err=True)
        raise typer.Exit(code=1) from None
    except (DBAPIError, OSError) as exc:
        reason = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        typer.echo(f"error: cannot use {settings.database.render()}: {reason}", err=True)
        raise typer.Exit(code=1) from None


def _print_import(result: ImportResult) -> None:
    prefix = "dry run, nothing written: " if result.dry_run else ""
    for service in result.services:
        if service.action != "unchanged":
            typer.echo(f"{prefix}service {service.name!r} {service.action}")
    for slo in result.slos:
        typer.echo(f"{prefix}SLO {slo.name!r} of service {slo.service_name!r} {slo.action}")
    for item in result.ignored:
        typer.echo(f"ignored {item.kind} {item.name!r}: {item.reason}")
    counts = {
        action: sum(slo.action == action for slo in result.slos)
        for action in ("created", "updated", "unchanged")
    }
    created_services = sum(service.action == "created" for service in result.services)
    typer.echo(
        f"{prefix}{counts['created']} SLO(s) created, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged; {created_services} service(s) created"
    )

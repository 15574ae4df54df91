"""`reliability-studio slo rules`: print (or write) the Prometheus rules of every SLO."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.catalog.models import Service
from reliability_studio.cli_settings import load_settings
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from reliability_studio.slos.rules import prometheus_rules_yaml
from reliability_studio.slos.rules_router import load_rule_slos


class UnknownServiceError(Exception):
    """`--service` names no service."""


def rules_command(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the rules to this file instead of standard output.",
            dir_okay=False,
            writable=True,
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(help="Only the SLOs of this service (its name or id)."),
    ] = None,
) -> None:
    """Print the Prometheus recording and alerting rules of every SLO that has an SLI.

    The YAML goes into Prometheus' `rule_files`; `promtool check rules` accepts it.
    Manual SLOs have no rules and are left out.
    """
    settings = load_settings()
    try:
        text = asyncio.run(_rules_yaml(settings, service))
    except UnknownServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except (DBAPIError, OSError) as exc:
        reason = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig else str(exc)
        typer.echo(f"error: cannot read {settings.database.render()}: {reason}", err=True)
        raise typer.Exit(code=1) from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


async def _rules_yaml(settings: Settings, service: str | None) -> str:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            service_id: uuid.UUID | None = None
            if service is not None:
                service_id = await _service_id(session, service)
            rule_slos = await load_rule_slos(
                session, DEFAULT_ORGANIZATION_ID, service_id=service_id
            )
    finally:
        await engine.dispose()
    return prometheus_rules_yaml(rule_slos)


async def _service_id(session: AsyncSession, service: str) -> uuid.UUID:
    """The id of the service named `service`, or whose id it is."""
    by_name = select(Service.id).where(
        Service.organization_id == DEFAULT_ORGANIZATION_ID, Service.name == service
    )
    found = await session.scalar(by_name)
    if found is None:
        try:
            as_id = uuid.UUID(service)
        except ValueError:
            as_id = None
        if as_id is not None:
            found = await session.scalar(
                select(Service.id).where(
                    Service.organization_id == DEFAULT_ORGANIZATION_ID, Service.id == as_id
                )
            )
    if found is None:
        raise UnknownServiceError(f"no service named (or with the id) {service!r}")
    return found

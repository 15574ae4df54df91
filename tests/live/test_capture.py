"""Specification of which committed changes become live events, on each backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.live.capture import install, know_services
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from reliability_studio.slos.models import SLO

Events = list[dict[str, Any]]


class RecordingOutlet:
    """Keeps what it is sent, commit by commit."""

    def __init__(self) -> None:
        self.commits: list[Events] = []

    def send(self, events: Events) -> None:
        self.commits.append(events)

    @property
    def types(self) -> list[str]:
        return [event["type"] for commit in self.commits for event in commit]


def run(settings: Settings, scenario: Callable[[AsyncSession], Awaitable[None]]) -> RecordingOutlet:
    """Run `scenario` in a session whose commits go to a recording outlet."""
    outlet = RecordingOutlet()

    async def main() -> None:
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        install(sessionmaker, outlet)
        try:
            async with sessionmaker() as session:
                await scenario(session)
        finally:
            await engine.dispose()

    asyncio.run(main())
    return outlet


def incident(title: str = "Checkout errors") -> Incident:
    return Incident(
        id=uuid.uuid4(),
        organization_id=DEFAULT_ORGANIZATION_ID,
        title=title,
        severity="high",
        status="open",
    )


def test_a_committed_incident_is_sent_with_its_services(settings: Settings) -> None:
    service = Service(id=uuid.uuid4(), organization_id=DEFAULT_ORGANIZATION_ID, name="checkout")
    opened = incident()

    async def scenario(session: AsyncSession) -> None:
        session.add_all([service, opened])
        await session.flush()
        session.add(
            IncidentService(
                incident_id=opened.id, service_id=service.id, organization_id=opened.organization_id
            )
        )
        await session.commit()

    outlet = run(settings, scenario)
    assert len(outlet.commits) == 1
    [event] = outlet.commits[0]
    assert event["type"] == "incident.created"
    assert event["service_ids"] == [str(service.id)]


def test_a_rolled_back_change_sends_nothing_even_after_a_flush(settings: Settings) -> None:
    async def scenario(session: AsyncSession) -> None:
        session.add(incident())
        await session.flush()
        await session.rollback()
        session.add(incident("After the rollback"))
        await session.commit()

    outlet = run(settings, scenario)
    assert [[e["data"]["title"] for e in commit] for commit in outlet.commits] == [
        ["After the rollback"]
    ]


def test_an_slo_evaluated_again_without_news_sends_nothing(settings: Settings) -> None:
    service = Service(id=uuid.uuid4(), organization_id=DEFAULT_ORGANIZATION_ID, name="checkout")
    slo = SLO(
        id=uuid.uuid4(),
        organization_id=DEFAULT_ORGANIZATION_ID,
        service_id=service.id,
        name="availability",
        objective=99.9,
        window_days=30,
        status="healthy",
        error_budget_remaining=80.0,
    )

    async def scenario(session: AsyncSession) -> None:
        session.add_all([service, slo])
        await session.commit()
        slo.evaluation_error = None
        slo.sli_value = 0.9995  # measured again; nothing a dashboard shows moved
        await session.commit()
        slo.status = "at_risk"
        slo.error_budget_remaining = 20.0
        await session.commit()

    outlet = run(settings, scenario)
    assert outlet.types == ["slo.created", "slo.updated"]
    assert outlet.commits[1][0]["data"]["status"] == "at_risk"
    assert outlet.commits[1][0]["service_ids"] == [str(service.id)]


def _service(name: str) -> Service:
    return Service(id=uuid.uuid4(), organization_id=DEFAULT_ORGANIZATION_ID, name=name)


def _link(incident_id: uuid.UUID, service: Service) -> IncidentService:
    return IncidentService(
        incident_id=incident_id, service_id=service.id, organization_id=DEFAULT_ORGANIZATION_ID
    )


def _watch_look_ups(session: AsyncSession, seen: list[str]) -> None:
    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM incident_services" in statement:
            seen.append(statement)

    sync_engine = session.sync_session.get_bind()
    event.listen(sync_engine, "before_cursor_execute", before)


def test_services_the_writer_told_are_sent_without_looking_them_up(settings: Settings) -> None:
    # Each look-up is a round trip: under load, a turn of a busy event loop per write.
    checkout, told = _service("checkout"), _service("told")
    opened = incident()
    look_ups: list[str] = []

    async def scenario(session: AsyncSession) -> None:
        session.add_all([checkout, told, opened])
        await session.flush()
        session.add(_link(opened.id, checkout))
        await session.flush()
        _watch_look_ups(session, look_ups)
        know_services(session, opened.id, [told.id])  # not what is linked: seen if used
        await session.commit()

    [[event]] = run(settings, scenario).commits
    assert event["service_ids"] == [str(told.id)]
    assert look_ups == []


def test_a_link_flushed_after_the_services_were_told_makes_the_commit_look_them_up(
    settings: Settings,
) -> None:
    first, second = _service("first"), _service("second")
    opened = incident()

    async def scenario(session: AsyncSession) -> None:
        session.add_all([first, second, opened])
        await session.flush()
        session.add(_link(opened.id, first))
        await session.flush()
        know_services(session, opened.id, [first.id])
        session.add(_link(opened.id, second))
        await session.commit()

    [[event]] = run(settings, scenario).commits
    assert event["service_ids"] == sorted([str(first.id), str(second.id)])


def test_services_told_in_one_transaction_are_forgotten_by_the_next(settings: Settings) -> None:
    checkout, told = _service("checkout"), _service("told")
    opened = incident()

    async def scenario(session: AsyncSession) -> None:
        session.add_all([checkout, told])
        await session.commit()  # sends nothing: no incident yet
        know_services(session, opened.id, [told.id])
        await session.rollback()
        session.add(opened)
        await session.flush()
        session.add(_link(opened.id, checkout))
        await session.commit()

    [[event]] = run(settings, scenario).commits
    assert event["service_ids"] == [str(checkout.id)]

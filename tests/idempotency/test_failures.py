"""Specification of keys whose request failed, is still running, or was abandoned by a
process that died: a change is never made twice, and a request that changed nothing can
always be retried."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any, NoReturn

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.idempotency import service
from reliability_studio.idempotency.models import APPLIED, COMPLETED, IN_PROGRESS
from reliability_studio.idempotency.rules import LEASE
from reliability_studio.idempotency.service import (
    KeyScope,
    KeyTakenOverError,
    Reservation,
    active_reservation,
)
from reliability_studio.incidents import service as incidents
from reliability_studio.incidents.models import Incident
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from tests.idempotency.helpers import (
    abandoned_key,
    age_keys,
    count,
    in_database,
    keyed,
    sqlite_only,
)
from tests.support.api import assert_problem

INCIDENT = {"title": "Checkout down", "severity": "high"}


def _database_down(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


def test_a_request_that_failed_before_writing_is_carried_out_by_its_retry(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = keyed()
    with monkeypatch.context() as outage:
        outage.setattr(incidents, "create_incident", _database_down)
        assert_problem(client.post("/api/incidents", json=INCIDENT, headers=headers), 503)

    retry = client.post("/api/incidents", json=INCIDENT, headers=headers)

    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers
    assert count(settings, Incident) == 1


def test_a_request_that_failed_after_its_write_committed_is_never_carried_out_again(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = keyed()
    with monkeypatch.context() as outage:  # the incident is committed, then the answer fails
        outage.setattr(incidents, "incident_out", _database_down)
        assert_problem(client.post("/api/incidents", json=INCIDENT, headers=headers), 503)

    retry = client.post("/api/incidents", json=INCIDENT, headers=headers)

    assert_problem(retry, 409, field="Idempotency-Key")
    assert count(settings, Incident) == 1


@sqlite_only
def test_a_retry_while_the_first_request_runs_gets_409_with_retry_after(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "WAIT_SECONDS", 0.2)
    abandoned_key(settings, "running", "/api/incidents", INCIDENT, IN_PROGRESS, timedelta(0))

    retry = client.post("/api/incidents", json=INCIDENT, headers=keyed("running"))

    assert_problem(retry, 409, field="Idempotency-Key")
    assert retry.headers["retry-after"] == "1"
    assert count(settings, Incident) == 0


def test_a_retry_waiting_on_the_first_request_gets_its_response_when_it_ends(
    client: TestClient, settings: Settings
) -> None:
    headers = keyed()
    first = client.post("/api/services", json={"name": "checkout"}, headers=headers)
    age_keys(settings, timedelta(0), state=IN_PROGRESS)  # as if still running...

    answering = threading.Timer(0.3, age_keys, (settings, timedelta(0)), {"state": COMPLETED})
    answering.start()  # ...and answering 0.3 s from now
    try:
        retry = client.post("/api/services", json={"name": "checkout"}, headers=headers)
    finally:
        answering.join()

    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert count(settings, Service) == 1


def test_a_key_abandoned_before_any_write_is_taken_over_once_its_lease_has_run_out(
    client: TestClient, settings: Settings
) -> None:
    abandoned_key(settings, "died", "/api/incidents", INCIDENT, IN_PROGRESS, LEASE)

    retry = client.post("/api/incidents", json=INCIDENT, headers=keyed("died"))

    assert retry.status_code == 201
    assert count(settings, Incident) == 1


@sqlite_only
def test_a_key_abandoned_after_its_write_committed_is_never_carried_out_again(
    client: TestClient, settings: Settings
) -> None:
    abandoned_key(settings, "died", "/api/incidents", INCIDENT, APPLIED, LEASE)

    retry = client.post("/api/incidents", json=INCIDENT, headers=keyed("died"))

    assert_problem(retry, 409, field="Idempotency-Key")
    assert count(settings, Incident) == 0


def test_a_request_whose_key_was_taken_over_cannot_commit_its_write(settings: Settings) -> None:
    lapsed = Reservation(  # its row now carries another request's lock
        id=uuid.uuid4(),
        lock_id=uuid.uuid4(),
        scope=KeyScope(DEFAULT_ORGANIZATION_ID, "local:local", "lapsed"),
    )

    async def write(session: AsyncSession) -> None:
        bound = active_reservation.set(lapsed)
        try:
            session.add(Service(organization_id=DEFAULT_ORGANIZATION_ID, name="late"))
            with pytest.raises(KeyTakenOverError):
                await session.commit()
            await session.rollback()
        finally:
            active_reservation.reset(bound)

    in_database(settings, write)
    assert count(settings, Service) == 0

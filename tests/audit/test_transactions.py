"""Specification of when writes are audited: only inside API requests, in the transaction of
the write, so that nothing is recorded of a write that did not happen."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState

from reliability_studio.config import Settings
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from tests.audit.helpers import as_actor, audit_entries, new_service, user, write


def test_a_write_without_a_request_actor_is_not_audited(settings: Settings) -> None:
    async def background_job(session: AsyncSession) -> None:
        session.add(new_service())
        await session.commit()

    assert write(settings, None, background_job) == []


def test_a_write_with_a_bound_actor_records_its_kind_id_token_and_request(
    settings: Settings,
) -> None:
    service = new_service()

    async def request(session: AsyncSession) -> None:
        session.add(service)
        await session.commit()

    [entry] = write(settings, user("alice"), request)
    assert (entry.action, entry.resource_type, entry.resource_id) == (
        "service.created",
        "service",
        str(service.id),
    )
    assert (entry.actor_kind, entry.actor_name, entry.actor_id) == ("user", "alice", "user-alice")
    assert (entry.token_id, entry.request_id) == ("token-alice", "req-alice")
    assert entry.organization_id == DEFAULT_ORGANIZATION_ID


def test_a_rolled_back_transaction_leaves_no_entry(settings: Settings) -> None:
    kept = new_service("kept")

    async def request(session: AsyncSession) -> None:
        session.add(new_service("dropped"))
        await session.flush()
        await session.rollback()
        session.add(kept)
        await session.commit()

    entries = write(settings, user(), request)
    assert [entry.after["name"] for entry in entries if entry.after] == ["kept"]


def test_a_transaction_that_fails_at_commit_leaves_no_entry(settings: Settings) -> None:
    async def request(session: AsyncSession) -> None:
        session.add(new_service("twin"))
        await session.commit()
        session.add(new_service("other"))
        session.add(new_service("twin"))  # the unique name refuses the whole commit
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
        else:
            raise AssertionError("the duplicate name was accepted")

    entries = write(settings, user(), request)
    assert [entry.after["name"] for entry in entries if entry.after] == ["twin"]


def test_a_savepoint_rolled_back_takes_only_its_own_changes_with_it(settings: Settings) -> None:
    async def request(session: AsyncSession) -> None:
        session.add(new_service("before-savepoint"))
        await session.flush()
        savepoint = await session.begin_nested()
        session.add(new_service("in-savepoint"))
        await session.flush()
        await savepoint.rollback()
        session.add(new_service("after-savepoint"))
        await session.commit()

    entries = write(settings, user(), request)
    names = sorted(entry.after["name"] for entry in entries if entry.after)
    assert names == ["after-savepoint", "before-savepoint"]


def test_the_changes_of_a_released_savepoint_are_kept(settings: Settings) -> None:
    async def request(session: AsyncSession) -> None:
        session.add(new_service("before-savepoint"))
        async with session.begin_nested():
            session.add(new_service("in-savepoint"))
        await session.commit()

    entries = write(settings, user(), request)
    names = sorted(entry.after["name"] for entry in entries if entry.after)
    assert names == ["before-savepoint", "in-savepoint"]


def test_several_flushes_of_one_new_row_make_one_creation_with_its_last_values(
    settings: Settings,
) -> None:
    service = new_service("draft")

    async def request(session: AsyncSession) -> None:
        session.add(service)
        await session.flush()
        service.name = "final"
        service.team = "payments"
        await session.flush()
        await session.commit()

    [entry] = write(settings, user(), request)
    assert entry.action == "service.created"
    assert entry.after is not None
    assert (entry.after["name"], entry.after["team"]) == ("final", "payments")


def test_the_audit_log_does_not_audit_its_own_rows(client: TestClient) -> None:
    response = client.post("/api/services", json={"name": "checkout"})
    assert response.status_code == 201, response.text

    entries = audit_entries(client)
    assert [(e["resource_type"], e["action"]) for e in entries] == [("service", "service.created")]


def test_a_refused_duplicate_writes_no_entry(client: TestClient) -> None:
    assert client.post("/api/services", json={"name": "checkout"}).status_code == 201
    response = client.post(
        "/api/services", json={"name": "checkout"}, headers=as_actor("eve", "req-twin")
    )
    assert response.status_code == 409, response.text

    assert audit_entries(client, request_id="req-twin") == []
    assert len(audit_entries(client, action="service.created")) == 1


def test_a_request_that_fails_after_flushing_its_changes_writes_no_entry(
    client: TestClient,
) -> None:
    response = client.post("/api/incidents", json={"title": "Checkout down", "severity": "high"})
    assert response.status_code == 201, response.text
    incident = response.json()
    # The status change is flushed when the services are looked up; the unknown one is a 422.
    response = client.patch(
        f"/api/incidents/{incident['id']}",
        json={"status": "investigating", "service_ids": [str(uuid.uuid4())]},
        headers=as_actor("eve", "req-bad-service"),
    )
    assert response.status_code == 422, response.text

    assert audit_entries(client, request_id="req-bad-service") == []
    assert client.get(f"/api/incidents/{incident['id']}").json()["status"] == "open"


def test_entries_are_inserted_on_the_connection_not_through_the_orms_bulk_insert(
    settings: Settings,
) -> None:
    # The ORM's bulk insert was a quarter of the audit's cost on a timeline append (py-spy).
    orm_statements: list[str] = []

    def seen(state: ORMExecuteState) -> None:
        orm_statements.append(str(state.statement))

    async def request(session: AsyncSession) -> None:
        event.listen(session.sync_session, "do_orm_execute", seen)
        session.add(new_service("audited"))
        await session.commit()

    [entry] = write(settings, user(), request)
    assert entry.action == "service.created"
    assert not [s for s in orm_statements if "audit_entries" in s]

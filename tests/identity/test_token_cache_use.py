"""Specification of how the API uses the token cache: on PostgreSQL a token is looked up
once and then served from memory, and any change to credentials, from this process or
any other, is refused from then on. On SQLite every request looks its token up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from tests.live.conftest import fetch_value
from tests.support.identity import bearer, secured, user_token

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.identity.tokens import hash_token

HEARD_WITHIN_SECONDS = 1.0  # far below the cache's 10 s: only a notification explains it


@pytest.fixture
def listening(settings: Settings) -> Iterator[tuple[TestClient, list[str]]]:
    """A client of an app that requires tokens, once its listener is connected, and the
    token look-ups its engine sends."""
    lookups: list[str] = []
    with TestClient(create_app(secured(settings))) as client:

        @event.listens_for(client.app.state.engine.sync_engine, "before_cursor_execute")  # type: ignore[attr-defined]
        def _count(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if "WHERE api_tokens.token_hash = " in statement:
                lookups.append(statement)

        _wait_until_listening(client)
        yield client, lookups


def _remembered_token(
    client: TestClient, maker: dict[str, str], body: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """A token made through the API and used once (so remembered): its id and header."""
    created = client.post("/api/tokens", json=body, headers=maker)
    assert created.status_code == 201, created.text
    token = bearer(created.json()["token"])
    assert client.get("/api/me", headers=token).status_code == 200
    return created.json()["id"], token


def _wait_until_listening(client: TestClient) -> None:
    bus = getattr(client.app.state, "live_bus", None)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while bus is not None and not bus.connected.is_set():
        assert time.monotonic() < deadline, "the listener did not connect"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("settings", "expected_lookups"), [("postgresql", 1), ("sqlite", 5)], indirect=["settings"]
)
def test_a_token_is_looked_up_once_on_postgresql_and_at_every_request_on_sqlite(
    listening: tuple[TestClient, list[str]], settings: Settings, expected_lookups: int
) -> None:
    client, lookups = listening
    token = bearer(user_token(settings, "viewer"))
    assert [client.get("/api/me", headers=token).status_code for _ in range(5)] == [200] * 5
    assert len(lookups) == expected_lookups


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_remembered_token_revoked_through_the_api_is_refused_at_once(
    listening: tuple[TestClient, list[str]], settings: Settings
) -> None:
    client, lookups = listening
    owner = bearer(user_token(settings, "owner"))
    token_id, token = _remembered_token(client, owner, {"name": "ci"})
    remembered = len(lookups)
    assert client.delete(f"/api/tokens/{token_id}", headers=owner).status_code == 204
    refused = client.get("/api/me", headers=token)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert len(lookups) == remembered + 1  # looked up again, not answered from memory


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_remembered_token_of_a_disabled_service_account_is_refused_at_once(
    listening: tuple[TestClient, list[str]], settings: Settings
) -> None:
    client, _ = listening
    admin = bearer(user_token(settings, "admin"))
    account = client.post(
        "/api/service-accounts", json={"name": "ci", "role": "responder"}, headers=admin
    ).json()
    _, ci = _remembered_token(client, admin, {"name": "ci", "service_account_id": account["id"]})
    disabled = client.patch(
        f"/api/service-accounts/{account['id']}", json={"disabled": True}, headers=admin
    )
    assert disabled.status_code == 200
    assert client.get("/api/me", headers=ci).status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1",
        "UPDATE users SET disabled = true WHERE id = "
        "(SELECT user_id FROM api_tokens WHERE token_hash = $1)",
        "DELETE FROM memberships WHERE user_id = "
        "(SELECT user_id FROM api_tokens WHERE token_hash = $1)",
    ],
    ids=["token revoked", "user disabled", "membership removed"],
)
@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_change_made_outside_this_process_is_heard_and_refused(
    listening: tuple[TestClient, list[str]], settings: Settings, change: str
) -> None:
    # An operator's SQL, or another replica: only PostgreSQL's notification can tell us.
    client, lookups = listening
    raw = user_token(settings, "viewer")
    assert client.get("/api/me", headers=bearer(raw)).status_code == 200
    asyncio.run(fetch_value(settings, change + " RETURNING 1", hash_token(raw)))
    changed = time.monotonic()
    while client.get("/api/me", headers=bearer(raw)).status_code == 200:
        assert time.monotonic() - changed < HEARD_WITHIN_SECONDS, "the change was not heard"
        time.sleep(0.005)
    assert len(lookups) >= 2


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_recording_a_tokens_use_does_not_make_the_process_forget_it(
    listening: tuple[TestClient, list[str]], settings: Settings
) -> None:
    client, lookups = listening
    raw = user_token(settings, "viewer")
    assert client.get("/api/me", headers=bearer(raw)).status_code == 200  # writes last_used_at
    time.sleep(0.3)  # a notification, had there been one, would have arrived
    assert client.get("/api/me", headers=bearer(raw)).status_code == 200
    assert len(lookups) == 1

"""Specification of revocation across `serve` processes on one PostgreSQL: each process
remembers the tokens it checked, and a token revoked through one is refused by the other."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from tests.live.test_replicas import fresh_database
from tests.support.identity import bearer
from tests.support.postgres import PostgresServer
from tests.support.served import serving

OWNER = "rs_" + "replica-owner-token-".ljust(43, "0")


def test_a_token_revoked_through_one_process_is_refused_by_another(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    settings = fresh_database(postgres_server, "token_replicas", tmp_path, "a", "b")
    secure = {**settings, "AUTH_MODE": "token", "BOOTSTRAP_TOKEN": OWNER}
    with serving(tmp_path / "a", **secure) as first, serving(tmp_path / "b", **secure) as second:
        _wait_until_listening(second.base_url)
        owner = bearer(OWNER)
        created = httpx.post(f"{first.base_url}/api/tokens", json={"name": "ci"}, headers=owner)
        assert created.status_code == 201, created.text
        token = bearer(created.json()["token"])
        for _ in range(3):  # the second process now remembers it
            assert httpx.get(f"{second.base_url}/api/me", headers=token).status_code == 200
        revoked = httpx.delete(f"{first.base_url}/api/tokens/{created.json()['id']}", headers=owner)
        assert revoked.status_code == 204
        refused = httpx.get(f"{second.base_url}/api/me", headers=token)
        assert refused.status_code == 401, "the other process still accepted the token"
        assert "revoked" in refused.json()["detail"]


def _wait_until_listening(base_url: str) -> None:
    # The live stream's status is the listener's: `ok` once it is connected.
    deadline = time.monotonic() + 10
    while httpx.get(f"{base_url}/health").json()["checks"]["live"]["status"] != "ok":
        assert time.monotonic() < deadline, "the listener did not connect"
        time.sleep(0.05)

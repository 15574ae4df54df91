"""Specification of `reliability-studio login`: RFC 8252 loopback redirect with PKCE,
through our server and the real provider, ending with a personal API token in a file only
its owner can read."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.identity.conftest import StartApp
from tests.identity.oidc_helpers import in_database
from tests.support.oidc import Browser
from typer.testing import CliRunner

from reliability_studio.cli import app as cli_app
from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.identity.cli_login import LoginError, login
from reliability_studio.identity.models import ApiToken, User
from reliability_studio.identity.oidc import code_challenge_s256, new_code_verifier


def _is_loopback_callback(target: str) -> bool:
    parts = urlsplit(target)
    return parts.hostname == "127.0.0.1" and parts.path == "/callback"


def _browser_step(browser: Browser, login_name: str, delivered: list[str]) -> Callable[[str], None]:
    """What `login()` opens the sign-in address with: the scripted browser signs in as
    `login_name`, then visits the loopback redirect (recorded in `delivered`)."""

    def open_browser(address: str) -> None:
        target = browser.sign_in(address, login_name, stop_at=_is_loopback_callback)
        delivered.append(target)
        assert browser.http.get(target).status_code == 200

    return open_browser


def _tokens(settings: Settings) -> list[ApiToken]:
    async def load(session: AsyncSession) -> list[ApiToken]:
        return list((await session.scalars(select(ApiToken))).all())

    return in_database(settings, load)


def test_cli_login_saves_a_personal_api_token_readable_by_its_owner_only(
    start_app: StartApp, oidc_settings: Settings, tmp_path: Path
) -> None:
    base_url = start_app()
    delivered: list[str] = []
    printed: list[str] = []
    credentials = tmp_path / "config" / "reliability-studio" / "credentials.json"
    with Browser() as browser:
        result = login(
            base_url,
            open_browser=_browser_step(browser, "bob", delivered),
            timeout=20,
            path=credentials,
            token_name="laptop",
            echo=printed.append,
        )

    # The browser was sent through our server with the CLI's port and PKCE challenge.
    assert "/api/auth/oidc/login?cli_port=" in printed[0]
    assert "cli_challenge=" in printed[0]
    assert "code=" in delivered[0]
    assert "state=" in delivered[0]

    token = result.token
    assert token.startswith("rs_")
    assert len(token) == 46
    assert result.role == "responder"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials.parent.stat().st_mode) == 0o700
    saved = json.loads(credentials.read_text())["servers"][base_url]
    assert saved["token"] == token
    assert saved["role"] == "responder"
    assert saved["user"]["email"] == "bob@example.com"

    [row] = _tokens(oidc_settings)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:8]
    assert (row.scope, row.role, row.name) == ("api", "responder", "laptop")
    assert row.expires_at is not None
    assert abs(row.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)

    async def bob(session: AsyncSession) -> User | None:
        return await session.get(User, row.user_id)

    user = in_database(oidc_settings, bob)
    assert user is not None
    assert user.email == "bob@example.com"

    # It is an API token like any other.
    me = httpx.get(f"{base_url}/api/services", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_second_login_keeps_other_servers_tokens(
    start_app: StartApp, oidc_settings: Settings, tmp_path: Path
) -> None:
    base_url = start_app()
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"servers": {"https://elsewhere": {"token": "rs_x"}}}))
    with Browser() as browser:
        result = login(
            base_url,
            open_browser=_browser_step(browser, "alice", []),
            timeout=20,
            path=credentials,
            echo=lambda _: None,
        )
    servers = json.loads(credentials.read_text())["servers"]
    assert servers["https://elsewhere"] == {"token": "rs_x"}
    assert servers[base_url]["token"] == result.token
    assert result.role == "admin"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_the_one_time_code_works_once_and_only_with_the_verifier(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app()

    def one_time_code(verifier: str) -> str:
        with Browser() as browser:
            target = browser.sign_in(
                f"{base_url}/api/auth/oidc/login?cli_port=40000&cli_state=abc"
                f"&cli_challenge={code_challenge_s256(verifier)}",
                "alice",
                stop_at=_is_loopback_callback,
            )
        assert target.startswith("http://127.0.0.1:40000/callback?")
        query = parse_qs(urlsplit(target).query)
        assert query["state"] == ["abc"]
        return query["code"][0]

    def exchange(code: str, verifier: str) -> httpx.Response:
        return httpx.post(
            f"{base_url}/api/auth/cli/token", json={"code": code, "code_verifier": verifier}
        )

    verifier = new_code_verifier()
    code = one_time_code(verifier)
    wrong = exchange(code, new_code_verifier())
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert exchange(code, verifier).status_code == 400  # a wrong guess spent it
    assert _tokens(oidc_settings) == []

    code = one_time_code(verifier)
    issued = exchange(code, verifier)
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    assert exchange(code, verifier).status_code == 400  # once only
    assert len(_tokens(oidc_settings)) == 1


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_cli_login_needs_both_port_and_challenge(start_app: StartApp) -> None:
    base_url = start_app()
    response = httpx.get(f"{base_url}/api/auth/oidc/login?cli_port=40000")
    assert response.status_code == 422
    response = httpx.get(f"{base_url}/api/auth/oidc/login?cli_port=80&cli_challenge={'a' * 43}")
    assert response.status_code == 422  # a privileged port is no CLI's


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_cli_login_gives_up_when_no_sign_in_arrives(start_app: StartApp, tmp_path: Path) -> None:
    base_url = start_app()
    with pytest.raises(LoginError, match="no sign-in arrived"):
        login(base_url, open_browser=None, timeout=0.2, path=tmp_path / "c.json", echo=print)
    assert not (tmp_path / "c.json").exists()


def test_the_login_command_is_installed() -> None:
    result = CliRunner().invoke(cli_app, ["login", "--help"])
    assert result.exit_code == 0
    assert "--server" in result.output
    assert "--no-browser" in result.output

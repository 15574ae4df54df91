"""Fixtures of the single sign-on tests: a real OpenID Connect provider (npm's
`oidc-provider`, started once per session), and our app served on the port whose
callback is registered there.

The provider knows two confidential clients (`studio`, the one our app is configured as,
and `other`, to obtain genuine ID tokens for another audience) and four people:

| login | groups               | role with `ROLE_MAP` |
|-------|----------------------|----------------------|
| alice | sre-admins, sre      | admin (the highest)  |
| bob   | sre                  | responder            |
| carol | marketing            | the default role     |
| dave  | (no groups claim)    | the default role     |
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete
from tests.support.identity import secured
from tests.support.oidc import Account, Client, OIDCProvider, served_on
from tests.support.postgres import free_port

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine
from reliability_studio.identity.oidc_models import CliLoginCode, LoginFlow

STUDIO_SECRET = "studio-secret-for-tests"
OTHER_SECRET = "other-secret-for-tests"
ROLE_MAP = {"sre-admins": "admin", "sre": "responder"}
ACCOUNTS = [
    Account("alice", "alice@example.com", "Alice Admin", ["sre-admins", "sre"]),
    Account("bob", "bob@example.com", "Bob Responder", ["sre"]),
    Account("carol", "carol@example.com", "Carol Marketing", ["marketing"]),
    Account("dave", "dave@example.com", "Dave NoGroups", []),
]

StartApp = Callable[..., str]


@pytest.fixture(scope="session")
def app_port() -> int:
    """The port our app is served on in these tests (its callback is registered)."""
    return free_port()


@pytest.fixture(scope="session")
def callback_url(app_port: int) -> str:
    return f"http://127.0.0.1:{app_port}/api/auth/oidc/callback"


@pytest.fixture(scope="session")
def oidc_provider(callback_url: str) -> Iterator[OIDCProvider]:
    """The real provider, for the whole session."""
    provider = OIDCProvider(
        clients=[
            Client("studio", STUDIO_SECRET, [callback_url]),
            Client("other", OTHER_SECRET, [callback_url]),
        ],
        accounts=ACCOUNTS,
    )
    with provider:
        yield provider


@pytest.fixture
def oidc_settings(settings: Settings, oidc_provider: OIDCProvider, callback_url: str) -> Settings:
    """`settings` (one backend, empty tables) with tokens required and single sign-on on."""
    asyncio.run(_empty_login_tables(settings))
    return configure(settings, oidc_provider, callback_url)


def configure(
    settings: Settings, provider: OIDCProvider, callback_url: str, **changes: Any
) -> Settings:
    """`settings` configured as the provider's `studio` client, plus `changes`."""
    return settings.model_copy(
        update={
            "auth_mode": "token",
            "oidc_issuer": provider.issuer,
            "oidc_client_id": "studio",
            "oidc_client_secret": SecretStr(STUDIO_SECRET),
            "oidc_scopes": ("openid", "email", "profile", "groups"),
            "oidc_redirect_url": callback_url,
            "oidc_role_map": ROLE_MAP,
            "oidc_default_role": "viewer",
            **changes,
        }
    )


@pytest.fixture
def start_app(oidc_settings: Settings, app_port: int) -> Iterator[StartApp]:
    """Serve our app on `app_port` with `oidc_settings` plus changes; returns its URL.
    One app at a time: starting another stops the first."""
    with ExitStack() as stack:
        current: list[ExitStack] = []

        def start(**changes: Any) -> str:
            if current:
                current.pop().close()
            inner = ExitStack()
            current.append(inner)
            app = create_app(oidc_settings.model_copy(update=changes))
            return inner.enter_context(served_on(app, app_port))

        def stop() -> None:
            if current:
                current.pop().close()

        stack.callback(stop)
        yield start


async def _empty_login_tables(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(delete(CliLoginCode))
            await connection.execute(delete(LoginFlow))
    finally:
        await engine.dispose()


@pytest.fixture
def secure(settings: Settings) -> Iterator[TestClient]:
    """A client of an app that requires identities (no credential sent by default)."""
    with TestClient(create_app(secured(settings))) as client:
        yield client

"""Helpers of the single sign-on tests: sign in with the scripted browser, read the
database, check a session cookie."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from http.cookies import SimpleCookie
from typing import TypeVar
from urllib.parse import urlencode

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from tests.support.oidc import Browser

from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.identity.sessions import SessionPrincipal, principal_from_session

T = TypeVar("T")
CALLBACK_PATH = "/api/auth/oidc/callback"


def in_database(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` on a session of `settings`' database; its result."""

    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def principal(
    settings: Settings, cookie: str, now: datetime | None = None
) -> SessionPrincipal | None:
    """What `principal_from_session` makes of `cookie`."""
    return in_database(
        settings, lambda session: principal_from_session(session, cookie, settings, now=now)
    )


def to_callback(browser: Browser, base_url: str, login: str, **query: str | int) -> str:
    """Start a sign-in at our server and go through the provider as `login`; the callback
    address the provider redirects to (not visited yet)."""
    start = f"{base_url}/api/auth/oidc/login"
    if query:
        start += "?" + urlencode(query)
    return browser.sign_in(start, login, stop_at=lambda target: CALLBACK_PATH in target)


def sign_in(browser: Browser, base_url: str, login: str, **query: str | int) -> httpx.Response:
    """A whole browser sign-in as `login`: the callback's response."""
    return browser.http.get(to_callback(browser, base_url, login, **query))


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """The cookies a response sets, by name, with their attributes."""
    cookies: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            cookies[name] = cookie
    return cookies

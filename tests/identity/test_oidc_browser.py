"""Specification of single sign-on in the browser, against a real OpenID Connect provider
(npm's `oidc-provider`): authorization code with PKCE, state, sessions, roles, logout."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.identity.conftest import StartApp
from tests.identity.oidc_helpers import (
    CALLBACK_PATH,
    in_database,
    principal,
    set_cookies,
    sign_in,
    to_callback,
)
from tests.support.oidc import Browser, OIDCProvider

from reliability_studio.config import Settings
from reliability_studio.identity.models import BrowserSession, Membership, User
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID


def _users(settings: Settings) -> list[User]:
    async def load(session: AsyncSession) -> list[User]:
        return list((await session.scalars(select(User).order_by(User.email))).all())

    return in_database(settings, load)


def _sessions(settings: Settings) -> list[BrowserSession]:
    async def load(session: AsyncSession) -> list[BrowserSession]:
        rows = await session.scalars(select(BrowserSession).order_by(BrowserSession.created_at))
        return list(rows.all())

    return in_database(settings, load)


def test_browser_sign_in_with_code_and_pkce_starts_a_session(
    start_app: StartApp, oidc_settings: Settings, oidc_provider: OIDCProvider
) -> None:
    base_url = start_app()
    with Browser() as browser:
        response = sign_in(browser, base_url, "alice")
        authorize = next(url for url in browser.visited if "/auth?" in url)

    # The authorization request: code flow, PKCE S256, a state and a nonce.
    sent = {key: values[0] for key, values in parse_qs(urlsplit(authorize).query).items()}
    assert authorize.startswith(oidc_provider.issuer)
    assert sent["response_type"] == "code"
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["code_challenge"]) == 43
    assert len(sent["state"]) >= 43
    assert len(sent["nonce"]) >= 43
    assert sent["client_id"] == "studio"

    # Signed in: back to `/` with a session cookie made as ASVS asks.
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
    cookies = set_cookies(response)
    session_cookie = cookies["rs_session"]["rs_session"]
    assert session_cookie["httponly"] is True
    assert session_cookie["samesite"].lower() == "lax"
    assert session_cookie["path"] == "/"
    assert session_cookie["max-age"] == str(oidc_settings.session_lifetime_seconds)
    assert not session_cookie["secure"]  # plain http here; https makes it Secure
    assert cookies["rs_oidc_state"]["rs_oidc_state"]["max-age"] == "0"  # spent
    cookie = session_cookie.value
    assert len(cookie) == 43

    # The cookie names a session of Alice, whose groups made her an admin.
    found = principal(oidc_settings, cookie)
    assert found is not None
    assert found.user.email == "alice@example.com"
    assert found.user.name == "Alice Admin"
    assert (found.user.oidc_issuer, found.user.oidc_subject) == (oidc_provider.issuer, "alice")
    assert found.user.last_login_at is not None
    assert [(m.organization_id, m.role) for m in found.memberships] == [
        (DEFAULT_ORGANIZATION_ID, "admin")
    ]
    assert found.role_in(DEFAULT_ORGANIZATION_ID) == "admin"
    # Only the hash is stored.
    [stored] = _sessions(oidc_settings)
    assert stored.token_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert stored.user_id == found.user.id


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_signing_in_again_keeps_one_user_and_rotates_the_session(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app()
    with Browser() as browser:
        first = set_cookies(sign_in(browser, base_url, "bob"))["rs_session"]["rs_session"].value
        # The browser still holds the first cookie when it signs in again.
        second = set_cookies(sign_in(browser, base_url, "bob"))["rs_session"]["rs_session"].value

    assert first != second
    assert principal(oidc_settings, first) is None  # revoked at the second login
    again = principal(oidc_settings, second)
    assert again is not None
    assert again.role_in(DEFAULT_ORGANIZATION_ID) == "responder"
    assert [user.email for user in _users(oidc_settings)] == ["bob@example.com"]
    revoked = [row.revoked_at is not None for row in _sessions(oidc_settings)]
    assert revoked == [True, False]


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_state_that_does_not_match_the_browser_is_refused(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app()
    with Browser() as browser, Browser() as stranger:
        target = to_callback(browser, base_url, "alice")

        # Another browser (no state cookie) cannot complete it: login CSRF.
        assert stranger.http.get(target).status_code == 400
        # A changed state is refused, even from the right browser.
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        state = query["state"][0]
        # Another first character: a state that began with "x" stayed genuine (1 in 64).
        query["state"] = [("y" if state.startswith("x") else "x") + state[1:]]
        forged = urlunsplit(parts._replace(query=urlencode({k: v[0] for k, v in query.items()})))
        refused = browser.http.get(forged)
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert "state" in refused.json()["detail"]
        assert _sessions(oidc_settings) == []

        # The genuine callback still works, once.
        assert browser.http.get(target).status_code == 303
        assert browser.http.get(target).status_code == 400  # the flow is spent

    assert len(_sessions(oidc_settings)) == 1


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_users_whose_groups_map_to_nothing_get_the_default_role(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app(oidc_default_role="viewer")
    roles = {}
    for login in ("carol", "dave", "bob"):
        with Browser() as browser:  # each person at their own browser
            response = sign_in(browser, base_url, login)
        assert response.status_code == 303, response.text
        cookie = set_cookies(response)["rs_session"]["rs_session"].value
        found = principal(oidc_settings, cookie)
        assert found is not None
        roles[login] = found.role_in(DEFAULT_ORGANIZATION_ID)
    assert roles == {"carol": "viewer", "dave": "viewer", "bob": "responder"}


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_users_whose_groups_map_to_nothing_are_refused_without_a_default_role(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app(oidc_default_role="")
    with Browser() as browser:
        refused = sign_in(browser, base_url, "carol")
    assert refused.status_code == 403
    assert "no group" in refused.json()["detail"]
    assert "rs_session" not in set_cookies(refused)
    assert _users(oidc_settings) == []  # nobody was created

    with Browser() as browser:
        admitted = sign_in(browser, base_url, "alice")
    assert admitted.status_code == 303


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_role_change_at_the_provider_applies_at_the_next_sign_in(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app(oidc_role_map={"sre": "admin"})
    with Browser() as browser:
        assert sign_in(browser, base_url, "bob").status_code == 303
    base_url = start_app(oidc_role_map={"sre": "viewer"})
    with Browser() as browser:
        assert sign_in(browser, base_url, "bob").status_code == 303

    async def roles(session: AsyncSession) -> list[str]:
        return list((await session.scalars(select(Membership.role))).all())

    assert in_database(oidc_settings, roles) == ["viewer"]


def test_logout_revokes_the_session_and_clears_the_cookie(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app()
    with Browser() as browser:
        cookie = set_cookies(sign_in(browser, base_url, "alice"))["rs_session"]["rs_session"].value
        assert principal(oidc_settings, cookie) is not None

        response = browser.http.post(f"{base_url}/api/auth/logout")
        assert response.status_code == 204
        assert set_cookies(response)["rs_session"]["rs_session"]["max-age"] == "0"
        assert "rs_session" not in browser.http.cookies

    assert principal(oidc_settings, cookie) is None
    [row] = _sessions(oidc_settings)
    assert row.revoked_at is not None


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_return_path_is_followed_but_never_another_origin(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app()
    with Browser() as browser:
        for unsafe in ("//evil.example/", "/\\evil.example", "https://evil.example/"):
            response = browser.http.get(
                f"{base_url}/api/auth/oidc/login", params={"return_to": unsafe}
            )
            assert response.status_code == 422, unsafe
            assert response.json()["errors"][0]["field"] == "return_to"
        response = sign_in(browser, base_url, "bob", return_to="/incidents?status=open")
    assert response.status_code == 303
    assert response.headers["location"] == "/incidents?status=open"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_without_an_issuer_single_sign_on_is_off(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app(oidc_issuer="")
    with Browser() as browser:
        response = browser.http.get(f"{base_url}/api/auth/oidc/login")
        assert response.status_code == 404
        assert "not configured" in response.json()["detail"]
        assert browser.http.get(f"{base_url}{CALLBACK_PATH}").status_code == 404


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_an_existing_user_with_the_same_email_is_not_taken_over(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    async def add_local_alice(session: AsyncSession) -> None:
        session.add(User(name="Local Alice", email="alice@example.com"))
        await session.commit()

    in_database(oidc_settings, add_local_alice)
    base_url = start_app()
    with Browser() as browser:
        response = sign_in(browser, base_url, "alice")
        assert response.status_code == 409
    base_url = start_app(oidc_link_by_email=True)  # the provider says the email is verified
    with Browser() as browser:
        assert sign_in(browser, base_url, "alice").status_code == 303

    async def count(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)

    assert in_database(oidc_settings, count) == 1
    [user] = _users(oidc_settings)
    assert user.oidc_subject == "alice"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_provider_that_cannot_be_reached_is_a_502_not_a_crash(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app(oidc_issuer="http://127.0.0.1:1")  # port 1 refuses at once
    with Browser() as browser:
        response = browser.http.get(f"{base_url}/api/auth/oidc/login")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert "cannot be reached" in response.json()["detail"]

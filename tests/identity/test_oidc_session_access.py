"""Specification: a browser signed in through single sign-on uses the API with its cookie,
and its writes must come from our own site (cross-site request forgery)."""

from __future__ import annotations

import httpx
from tests.identity.conftest import StartApp
from tests.identity.oidc_helpers import set_cookies, sign_in
from tests.support.oidc import Browser

from reliability_studio.config import Settings


def signed_in_cookie(base_url: str) -> dict[str, str]:
    with Browser() as browser:
        response = sign_in(browser, base_url, "alice")  # an admin, by her groups
    return {"rs_session": set_cookies(response)["rs_session"]["rs_session"].value}


def test_the_session_cookie_identifies_the_user_to_the_api(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app()
    with httpx.Client(base_url=base_url, cookies=signed_in_cookie(base_url)) as browser:
        me = browser.get("/api/me")
        assert me.status_code == 200, me.text
        assert (me.json()["name"], me.json()["role"], me.json()["via"]) == (
            "alice@example.com",
            "admin",
            "session",
        )
        created = browser.post("/api/services", json={"name": "x"}, headers={"Origin": base_url})
        assert created.status_code == 201, created.text


def test_a_write_from_another_site_with_the_cookie_is_refused(
    start_app: StartApp, oidc_settings: Settings
) -> None:
    base_url = start_app()
    with httpx.Client(base_url=base_url, cookies=signed_in_cookie(base_url)) as browser:
        forged = browser.post(
            "/api/services", json={"name": "x"}, headers={"Origin": "https://evil.example"}
        )
        assert forged.status_code == 403
        cross_site = browser.post(
            "/api/services", json={"name": "y"}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross_site.status_code == 403
        assert browser.get("/api/services").json()["items"] == []


def test_after_logout_the_cookie_is_refused(start_app: StartApp, oidc_settings: Settings) -> None:
    base_url = start_app()
    cookie = signed_in_cookie(base_url)
    with httpx.Client(base_url=base_url, cookies=cookie) as browser:
        assert browser.get("/api/me").status_code == 200
        assert browser.post("/api/auth/logout", headers={"Origin": base_url}).status_code == 204
    with httpx.Client(base_url=base_url, cookies=cookie) as stolen:  # the old value, replayed
        assert stolen.get("/api/me").status_code == 401

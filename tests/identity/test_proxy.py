"""Specification of sign-in through a trusted authenticating proxy, on each backend."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.support.identity import secured

from reliability_studio.app import create_app
from reliability_studio.config import Settings

PROXY = ("10.1.2.3", 44000)
PROXIED = {"X-WEBAUTH-USER": "ana", "X-WEBAUTH-EMAIL": "ana@example.com"}


def behind_proxy(settings: Settings) -> Settings:
    return secured(settings, auth_proxy_trusted=("10.1.2.0/24",))


def test_a_trusted_proxy_signs_in_a_new_user_as_viewer(settings: Settings) -> None:
    with TestClient(create_app(behind_proxy(settings)), client=PROXY) as client:
        me = client.get("/api/me", headers=PROXIED)
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "ana@example.com"
        assert me.json()["role"] == "viewer"
        assert me.json()["via"] == "proxy"
        assert client.post("/api/services", json={"name": "x"}, headers=PROXIED).status_code == 403


def test_the_proxys_role_header_sets_the_role(settings: Settings) -> None:
    with TestClient(create_app(behind_proxy(settings)), client=PROXY) as client:
        admin = {**PROXIED, "X-WEBAUTH-ROLE": "admin"}
        assert client.post("/api/services", json={"name": "x"}, headers=admin).status_code == 201
        viewer = {**PROXIED, "X-WEBAUTH-ROLE": "viewer"}  # the proxy's word wins, both ways
        assert client.get("/api/me", headers=viewer).json()["role"] == "viewer"


def test_proxy_headers_from_an_address_not_allowed_are_refused(settings: Settings) -> None:
    with TestClient(create_app(behind_proxy(settings)), client=("10.9.9.9", 44000)) as client:
        response = client.get("/api/me", headers={**PROXIED, "X-WEBAUTH-ROLE": "owner"})
    assert response.status_code == 401


def test_proxy_headers_are_ignored_when_no_proxy_is_configured(settings: Settings) -> None:
    with TestClient(create_app(secured(settings)), client=PROXY) as client:
        assert client.get("/api/me", headers=PROXIED).status_code == 401


def test_a_user_in_two_organizations_picks_one_per_request(settings: Settings) -> None:
    with TestClient(create_app(behind_proxy(settings)), client=PROXY) as client:
        created = client.post(
            "/api/organizations", json={"name": "Payments", "slug": "payments"}, headers=PROXIED
        )
        assert created.status_code == 201, created.text
        other = created.json()["id"]
        mine = {o["slug"] for o in client.get("/api/organizations", headers=PROXIED).json()}
        assert mine == {"payments", "default"}
        there = {**PROXIED, "X-Organization-ID": other}
        assert client.get("/api/me", headers=there).json()["organization_id"] == other
        assert (
            client.post("/api/services", json={"name": "ledger"}, headers=there).status_code == 201
        )
        here = client.get("/api/services", headers=PROXIED).json()["items"]
        assert [s["name"] for s in here] == []
        assert [s["name"] for s in client.get("/api/services", headers=there).json()["items"]] == [
            "ledger"
        ]


def test_naming_an_organization_one_is_not_a_member_of_is_refused(settings: Settings) -> None:
    with TestClient(create_app(behind_proxy(settings)), client=PROXY) as client:
        stranger = {**PROXIED, "X-Organization-ID": "6f1e4d2a-0000-4000-8000-000000000000"}
        assert client.get("/api/me", headers=stranger).status_code == 401

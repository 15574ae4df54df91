"""Specification of organizations, members, service accounts and tokens through the API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.support.identity import bearer, user_token

from reliability_studio.config import Settings


def test_an_admin_adds_a_member_who_then_appears_with_their_role(
    secure: TestClient, settings: Settings
) -> None:
    admin = bearer(user_token(settings, "admin", email="boss@example.com"))
    added = secure.post(
        "/api/organization/members",
        json={"email": "Ana@Example.com", "role": "responder"},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    members = secure.get("/api/organization/members", headers=admin).json()["items"]
    assert {(m["email"], m["role"]) for m in members} == {
        ("boss@example.com", "admin"),
        ("ana@example.com", "responder"),
    }


def test_adding_a_member_twice_is_409(secure: TestClient, settings: Settings) -> None:
    admin = bearer(user_token(settings, "admin"))
    body = {"email": "ana@example.com", "role": "viewer"}
    assert secure.post("/api/organization/members", json=body, headers=admin).status_code == 201
    assert secure.post("/api/organization/members", json=body, headers=admin).status_code == 409


def test_only_an_owner_hands_out_the_owner_role(secure: TestClient, settings: Settings) -> None:
    admin = bearer(user_token(settings, "admin"))
    body = {"email": "ana@example.com", "role": "owner"}
    assert secure.post("/api/organization/members", json=body, headers=admin).status_code == 403
    owner = bearer(user_token(settings, "owner"))
    assert secure.post("/api/organization/members", json=body, headers=owner).status_code == 201


def test_the_last_owner_cannot_be_demoted_or_removed(
    secure: TestClient, settings: Settings
) -> None:
    token = user_token(settings, "owner")
    owner = bearer(token)
    me = secure.get("/api/me", headers=owner).json()["id"]
    demoted = secure.patch(f"/api/organization/members/{me}", json={"role": "admin"}, headers=owner)
    assert demoted.status_code == 409
    assert secure.delete(f"/api/organization/members/{me}", headers=owner).status_code == 409


def test_a_removed_members_token_stops_working(secure: TestClient, settings: Settings) -> None:
    owner = bearer(user_token(settings, "owner"))
    ana = bearer(user_token(settings, "responder", email="ana@example.com"))
    ana_id = secure.get("/api/me", headers=ana).json()["id"]
    assert secure.delete(f"/api/organization/members/{ana_id}", headers=owner).status_code == 204
    assert secure.get("/api/me", headers=ana).status_code == 401


def test_a_demoted_members_token_gets_the_lower_role_at_once(
    secure: TestClient, settings: Settings
) -> None:
    owner = bearer(user_token(settings, "owner"))
    ana = bearer(user_token(settings, "admin", email="ana@example.com"))
    ana_id = secure.get("/api/me", headers=ana).json()["id"]
    secure.patch(f"/api/organization/members/{ana_id}", json={"role": "viewer"}, headers=owner)
    assert secure.get("/api/me", headers=ana).json()["role"] == "viewer"
    assert secure.post("/api/services", json={"name": "x"}, headers=ana).status_code == 403


def test_a_token_is_shown_once_and_listed_without_its_secret(
    secure: TestClient, settings: Settings
) -> None:
    owner = bearer(user_token(settings, "owner"))
    created = secure.post("/api/tokens", json={"name": "laptop", "role": "viewer"}, headers=owner)
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    secret = created.json()["token"]
    assert secret.startswith("rs_")
    listed = secure.get("/api/tokens", headers=owner).text
    assert secret not in listed
    assert created.json()["prefix"] in listed
    assert secure.get("/api/me", headers=bearer(secret)).json()["role"] == "viewer"


def test_a_token_may_not_carry_more_than_its_makers_role(
    secure: TestClient, settings: Settings
) -> None:
    responder = bearer(user_token(settings, "responder"))
    response = secure.post("/api/tokens", json={"name": "x", "role": "admin"}, headers=responder)
    assert response.status_code == 403


def test_a_token_lifetime_is_bounded(secure: TestClient, settings: Settings) -> None:
    owner = bearer(user_token(settings, "owner"))
    response = secure.post(
        "/api/tokens", json={"name": "x", "expires_in_days": 100_000}, headers=owner
    )
    assert response.status_code == 422
    assert "expires_in_days" in response.text


def test_a_member_sees_only_their_own_tokens(secure: TestClient, settings: Settings) -> None:
    ana = bearer(user_token(settings, "responder"))
    bob = bearer(user_token(settings, "responder"))
    bobs = secure.post("/api/tokens", json={"name": "bob"}, headers=bob).json()
    assert [t["name"] for t in secure.get("/api/tokens", headers=ana).json()["items"]] == ["test"]
    assert secure.get(f"/api/tokens/{bobs['id']}", headers=ana).status_code == 404
    assert secure.delete(f"/api/tokens/{bobs['id']}", headers=ana).status_code == 404


def test_a_service_account_token_acts_with_the_accounts_role(
    secure: TestClient, settings: Settings
) -> None:
    admin = bearer(user_token(settings, "admin"))
    account = secure.post(
        "/api/service-accounts", json={"name": "ci", "role": "responder"}, headers=admin
    ).json()
    above = secure.post(
        "/api/tokens",
        json={"name": "ci", "service_account_id": account["id"], "role": "admin"},
        headers=admin,
    )
    assert above.status_code == 422  # above the account's own role
    token = secure.post(
        "/api/tokens", json={"name": "ci", "service_account_id": account["id"]}, headers=admin
    )
    assert token.status_code == 201, token.text
    ci = bearer(token.json()["token"])
    me = secure.get("/api/me", headers=ci).json()
    assert (me["kind"], me["name"], me["role"]) == ("service_account", "ci", "responder")
    disabled = secure.patch(
        f"/api/service-accounts/{account['id']}", json={"disabled": True}, headers=admin
    )
    assert disabled.status_code == 200
    assert secure.get("/api/me", headers=ci).status_code == 401


def test_an_organization_created_through_the_api_is_owned_by_its_creator(
    secure: TestClient, settings: Settings
) -> None:
    ana = bearer(user_token(settings, "viewer"))
    created = secure.post(
        "/api/organizations", json={"name": "Payments", "slug": "payments"}, headers=ana
    )
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "owner"
    assert secure.get(created.headers["location"], headers=ana).status_code == 200
    taken = secure.post("/api/organizations", json={"name": "P", "slug": "payments"}, headers=ana)
    assert taken.status_code == 409

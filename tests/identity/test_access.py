"""Specification of access control: who may call what, on each backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from tests.support.identity import bearer, secured, user_token

from reliability_studio.app import create_app
from reliability_studio.config import Settings


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/incidents"),
        ("POST", "/api/services"),
        ("GET", "/api/slos"),
        ("GET", "/api/notification-channels"),
        ("GET", "/api/me"),
    ],
)
def test_no_token_is_401_with_a_bearer_challenge(
    secure: TestClient, method: str, path: str
) -> None:
    response = secure.request(method, path, json={})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_health_and_the_documentation_need_no_token(secure: TestClient) -> None:
    assert secure.get("/health").status_code == 200
    assert secure.get("/openapi.json").status_code == 200


def test_a_viewer_reads_but_may_not_write(secure: TestClient, settings: Settings) -> None:
    viewer = bearer(user_token(settings, "viewer"))
    assert secure.get("/api/incidents", headers=viewer).status_code == 200
    response = secure.post(
        "/api/incidents", json={"title": "Down", "severity": "high"}, headers=viewer
    )
    assert response.status_code == 403
    assert "responder" in response.json()["detail"]
    assert secure.get("/api/incidents", headers=viewer).json()["items"] == []


def test_a_responder_works_incidents_but_may_not_configure(
    secure: TestClient, settings: Settings
) -> None:
    responder = bearer(user_token(settings, "responder"))
    created = secure.post(
        "/api/incidents", json={"title": "Down", "severity": "high"}, headers=responder
    )
    assert created.status_code == 201
    assert secure.post("/api/services", json={"name": "x"}, headers=responder).status_code == 403


def test_an_admin_configures_the_catalog(secure: TestClient, settings: Settings) -> None:
    admin = bearer(user_token(settings, "admin"))
    assert secure.post("/api/services", json={"name": "x"}, headers=admin).status_code == 201


def test_a_revoked_token_is_401(secure: TestClient, settings: Settings) -> None:
    token = user_token(settings, "owner", revoked=True)
    response = secure.get("/api/incidents", headers=bearer(token))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_an_expired_token_is_401(secure: TestClient, settings: Settings) -> None:
    token = user_token(settings, "owner", expires_in=timedelta(seconds=-1))
    response = secure.get("/api/incidents", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_an_unknown_token_is_401(secure: TestClient) -> None:
    response = secure.get("/api/incidents", headers=bearer("rs_" + "x" * 43))
    assert response.status_code == 401


def test_revoking_through_the_api_stops_the_token_at_once(
    secure: TestClient, settings: Settings
) -> None:
    owner = bearer(user_token(settings, "owner"))
    created = secure.post("/api/tokens", json={"name": "ci"}, headers=owner)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert secure.get("/api/me", headers=bearer(token)).status_code == 200
    revoked = secure.delete(f"/api/tokens/{created.json()['id']}", headers=owner)
    assert revoked.status_code == 204
    assert secure.get("/api/me", headers=bearer(token)).status_code == 401


def test_an_ingest_token_sends_alerts_and_nothing_else(
    secure: TestClient, settings: Settings
) -> None:
    ingest = bearer(user_token(settings, "responder", scope="ingest"))
    alert = {"title": "HighErrorRate", "labels": {"alertname": "HighErrorRate"}}
    assert secure.post("/api/alerts", json=alert, headers=ingest).status_code == 201
    assert secure.get("/api/incidents", headers=ingest).status_code == 403


def test_alerts_without_any_token_are_refused_when_identities_are_required(
    secure: TestClient,
) -> None:
    alert = {"title": "HighErrorRate", "labels": {"alertname": "HighErrorRate"}}
    assert secure.post("/api/alerts", json=alert).status_code == 401


def test_a_viewer_may_not_send_alerts(secure: TestClient, settings: Settings) -> None:
    viewer = bearer(user_token(settings, "viewer"))
    alert = {"title": "HighErrorRate", "labels": {"alertname": "HighErrorRate"}}
    assert secure.post("/api/alerts", json=alert, headers=viewer).status_code == 403


def test_me_names_the_caller_and_their_role(secure: TestClient, settings: Settings) -> None:
    token = user_token(settings, "responder", email="ana@example.com")
    me = secure.get("/api/me", headers=bearer(token)).json()
    assert me["name"] == "ana@example.com"
    assert me["role"] == "responder"
    assert me["via"] == "token"


def test_automatic_timeline_events_name_the_caller_not_x_actor(
    secure: TestClient, settings: Settings
) -> None:
    token = bearer(user_token(settings, "responder", email="ana@example.com"))
    incident = secure.post(
        "/api/incidents",
        json={"title": "Down", "severity": "high"},
        headers={**token, "X-Actor": "mallory"},
    ).json()
    events = secure.get(f"/api/incidents/{incident['id']}/timeline", headers=token).json()
    assert {event["actor"] for event in events["items"]} == {"ana@example.com"}


def test_repeated_failures_from_one_address_are_slowed_down(settings: Settings) -> None:
    with TestClient(create_app(secured(settings, auth_failure_limit="3/minute"))) as client:
        codes = [
            client.get("/api/me", headers=bearer("rs_" + "y" * 43)).status_code for _ in range(5)
        ]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]


def test_security_headers_are_on_every_answer(secure: TestClient) -> None:
    for response in (secure.get("/health"), secure.get("/api/incidents")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]


def test_the_live_stream_refuses_a_caller_without_a_token(secure: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied, secure.websocket_connect("/api/ws"):
        pass
    assert denied.value.status_code == 401
    assert secure.get("/api/sse").status_code == 401


def test_a_viewer_subscribes_to_the_live_stream_with_a_token(
    secure: TestClient, settings: Settings
) -> None:
    viewer = bearer(user_token(settings, "viewer"))
    with secure.websocket_connect("/api/ws", headers=viewer) as socket:
        assert '"subscribed"' in socket.receive_text()


def test_minting_tokens_is_limited_per_token(settings: Settings) -> None:
    with TestClient(create_app(secured(settings, auth_endpoint_limit="2/minute"))) as client:
        owner = bearer(user_token(settings, "owner"))
        codes = [
            client.post("/api/tokens", json={"name": f"t{n}"}, headers=owner).status_code
            for n in range(3)
        ]
    assert codes == [201, 201, 429]


def test_the_sign_in_endpoints_are_limited_per_address(settings: Settings) -> None:
    with TestClient(create_app(secured(settings, auth_endpoint_limit="2/minute"))) as client:
        codes = [client.post("/api/auth/cli/token", json={}).status_code for _ in range(3)]
    assert codes[2] == 429
    assert codes[:2] != [429, 429]

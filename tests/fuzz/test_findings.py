"""What the fuzzer found, each pinned by a direct test: fast, exact, and kept if the fuzzer's
generation ever stops reaching the case. docs/reliability.md ("Fuzzing") lists the findings.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from reliability_studio.api.fields import Timestamp
from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.identity.permissions import PUBLIC, requirement
from reliability_studio.outbound import policy_from_settings
from reliability_studio.outbound.resolver import resolve_checked
from reliability_studio.slos.rules import prometheus_rules_yaml
from tests.support.api import assert_problem

SQLITE_ONLY = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
# Names that getaddrinfo refuses to encode (IDNA) before asking any DNS server.
UNENCODABLE_HOSTS = ["smtp\x9d.example.com", "smtp..example.com", "x" * 64 + ".example.com"]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The app's /openapi.json (no database needed to build it)."""
    built: dict[str, Any] = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    return built


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


@pytest.mark.parametrize("host", UNENCODABLE_HOSTS)
def test_a_host_name_idna_cannot_encode_is_a_name_that_does_not_resolve(host: str) -> None:
    # Was: UnicodeError out of getaddrinfo, a 500 on POST /api/notification-channels.
    policy = policy_from_settings(Settings())
    with pytest.raises(socket.gaierror):
        asyncio.run(resolve_checked(host, 25, policy, timeout_seconds=2.0))


@SQLITE_ONLY
@pytest.mark.parametrize("host", UNENCODABLE_HOSTS)
def test_an_email_channel_with_such_a_host_is_answered_not_a_500(
    client: TestClient, host: str
) -> None:
    config = {
        "kind": "email",
        "host": host,
        "sender": "studio@example.com",
        "recipients": ["sre@example.com"],
    }
    response = client.post("/api/notification-channels", json={"name": "mail", "config": config})
    # Saved (a name that does not resolve from here passes the save-time check), or refused
    # by a stricter host-name rule; never an unhandled error.
    assert response.status_code in (201, 422), response.text


def test_every_guarded_operation_documents_401_403_and_429(document: dict[str, Any]) -> None:
    # Was: undocumented, so a 403 (e.g. POST /api/organizations without a person) or a
    # 429 from the throttles broke the contract /openapi.json states.
    for method, path, operation in _operations(document):
        if requirement(method, path) == PUBLIC:
            continue
        for status in ("401", "403", "429"):
            response = operation["responses"].get(status)
            assert response is not None, f"{method} {path} lacks {status}"
            assert "application/problem+json" in response["content"], f"{method} {path}"
        assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_sign_in_operations_document_their_throttle(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        if path.startswith("/api/auth/"):
            assert "429" in operation["responses"], f"{method} {path}"


def test_public_operations_do_not_claim_to_need_a_sign_in(document: dict[str, Any]) -> None:
    assert "401" not in document["paths"]["/health"]["get"]["responses"]


def test_the_rule_file_is_documented_as_the_document_it_is(document: dict[str, Any]) -> None:
    # Was: `type: string`, while a YAML body's schema describes the parsed document.
    for path in ("/api/prometheus-rules", "/api/slos/{slo_id}/prometheus-rules"):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        schema = content["application/yaml"]["schema"]
        parsed = yaml.safe_load(prometheus_rules_yaml([]))
        assert schema["type"] == "object"
        assert isinstance(parsed, dict)
        assert set(schema["required"]) <= set(parsed)
        assert isinstance(parsed["groups"], list)


def test_the_openslo_export_is_documented_as_a_yaml_stream(document: dict[str, Any]) -> None:
    # Was: `type: string`; the export is several YAML documents, which no one schema
    # describes once parsed, so none is given.
    content = document["paths"]["/api/openslo"]["get"]["responses"]["200"]["content"]
    assert "schema" not in content["application/yaml"]


@pytest.mark.parametrize("value", [0.5, "0.5", -34359738367, "-1", "1e3", "2024", True])
def test_a_number_is_not_a_time(value: object) -> None:
    # Was: read as Unix seconds, so `?created_before=0.5` meant 1970, not a 422.
    with pytest.raises(ValidationError, match="RFC 3339"):
        TypeAdapter(Timestamp).validate_python(value)


@pytest.mark.parametrize(
    ("value", "utc"),
    [("2024-05-01T12:00:00Z", "2024-05-01T12:00:00+00:00"), ("2024-05-01T14:00:00+02:00", None)],
)
def test_an_rfc_3339_time_still_is_one(value: str, utc: str | None) -> None:
    parsed = TypeAdapter(Timestamp).validate_python(value)
    assert parsed.isoformat() == (utc or "2024-05-01T12:00:00+00:00")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/incidents", "created_before"),
        ("/api/alerts", "started_before"),
        ("/api/audit", "until"),
    ],
)
def test_a_number_in_a_time_filter_is_refused_naming_it(
    client: TestClient, path: str, parameter: str
) -> None:
    assert_problem(client.get(path, params={parameter: "0.5"}), 422, parameter)


@SQLITE_ONLY
def test_a_number_as_an_alert_time_is_refused_and_nothing_is_stored(client: TestClient) -> None:
    response = client.post("/api/alerts", json={"title": "Disk full", "ends_at": -34359738367})
    assert_problem(response, 422, "ends_at")
    assert client.get("/api/alerts").json()["items"] == []

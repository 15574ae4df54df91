"""The hostile payload table: garbage in, a clear 4xx out, and the data intact afterwards.

Against the main write and read endpoints (services, incidents, timeline, tasks, SLOs, alert
ingestion, notification channels and policies), on SQLite and on PostgreSQL:

- SQL injection text in every filter of every list (generated from the OpenAPI document) and
  in every text field: either refused (4xx) or stored verbatim (2xx);
- NUL bytes in every text field and every query parameter (PostgreSQL cannot store NUL);
- invalid UTF-8 in bodies and in percent-encoded query strings; lone surrogates;
- huge numbers (1e400, 2**64, 5000 digits, NaN) in every numeric field and in `limit`;
- JSON nested 100,000 levels deep (refused before any parser recurses), deep metadata;
- 10 MB bodies, declared and streamed; huge arrays;
- wrong content types (text/plain, form, multipart, XML, none);
- query-parameter abuse: huge or negative `limit`, repeated single-valued keys, thousands of
  values for a list parameter.

No request gets a 5xx; each refusal is problem+json. One app per database serves the whole
table, and after each group of requests the rows made at the start are fetched and compared:
writes go to "victim" rows made for the purpose, and nothing made at the start may change or
disappear. Keep the whole file well under 30 s.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import hypothesis.strategies as st
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from reliability_studio.api.input_limits import MAX_JSON_DEPTH, json_depth
from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.conftest import BACKENDS, QUIET_ENGINE, _empty_tables
from tests.support.api import create_incident, create_service, create_slo

INJECTIONS = (
    "' OR '1'='1",
    "'; DROP TABLE incidents; --",
    '" OR ""="',
    "1; SELECT pg_sleep(10) --",
    "%' OR 1=1 --",  # LIKE wildcards too
    "\\'; DELETE FROM services; --",
    "$$; DROP TABLE services; $$",
    "1) UNION SELECT id, name FROM users --",
    "é中🙂\u202e' OR 1=1",  # non-ASCII and a right-to-left override around the quote
)
NUL = "pay\x00ment"
TEN_MB = 10 * 1024 * 1024
_unique = itertools.count(1)

# Routes whose GETs the filter table leaves out: streams and browser flows, not lists.
SKIPPED_GETS = ("/api/sse", "/api/auth/", "/api/ws", "/metrics", "/docs", "/redoc", "/openapi")


@dataclass
class World:
    """One app per database, with rows that must survive everything, and victims to write to."""

    client: TestClient
    ids: dict[str, str]
    baseline: dict[str, Any] = field(default_factory=dict)


KNOWN_ROWS = {
    "service": "/api/services/{service_id}",
    "incident": "/api/incidents/{incident_id}",
    "slo": "/api/slos/{slo_id}",
    "channel": "/api/notification-channels/{channel_id}",
}


def _snapshot(world: World) -> dict[str, Any]:
    """What must not change: the rows made at the start, and every row id of each list."""
    client, ids = world.client, world.ids
    fetched: dict[str, Any] = {}
    for name, path in {
        **{name: path.format(**ids) for name, path in KNOWN_ROWS.items()},
        "timeline": f"/api/incidents/{ids['incident_id']}/timeline?limit=500",
        "tasks": f"/api/incidents/{ids['incident_id']}/tasks?limit=500",
    }.items():
        response = client.get(path)
        assert response.status_code == 200, (name, response.text)
        fetched[name] = response.json()
    for name, path in {
        "services": "/api/services?limit=500",
        "incidents": "/api/incidents?limit=500",
        "slos": "/api/slos?limit=500",
        "alerts": "/api/alerts?limit=500",
        "channels": "/api/notification-channels",
    }.items():
        response = client.get(path)
        assert response.status_code == 200, (name, response.text)
        fetched[name] = {item["id"] for item in response.json()["items"]}
    return fetched


def _assert_intact(world: World) -> None:
    """The rows made at the start are as they were (the cheap check, after each group)."""
    for name, path in KNOWN_ROWS.items():
        response = world.client.get(path.format(**world.ids))
        assert response.status_code == 200, (name, response.text)
        assert response.json() == world.baseline[name], f"{name} changed"


def _assert_nothing_lost(world: World) -> None:
    """The rows made at the start are as they were, and no row of any list has gone."""
    now = _snapshot(world)
    for name in ("service", "incident", "slo", "channel", "timeline", "tasks"):
        assert now[name] == world.baseline[name], f"{name} changed"
    for name in ("services", "incidents", "slos", "alerts", "channels"):
        missing = world.baseline[name] - now[name]
        assert not missing, f"{name} lost rows {missing}"


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, database_urls: dict[str, str]) -> Iterator[World]:
    """An app over emptied tables of one database, seeded through the API."""
    settings = Settings(database_url=database_urls[request.param], **QUIET_ENGINE)
    asyncio.run(_empty_tables(settings))
    with TestClient(create_app(settings)) as client:
        service = create_service(client, name="payment-service", team="payments")
        incident = create_incident(client, service_ids=[service["id"]])
        incident_id = incident["id"]
        for path, body in (
            (f"/api/incidents/{incident_id}/timeline", {"type": "note", "title": "Seen"}),
            (f"/api/incidents/{incident_id}/tasks", {"title": "Roll back"}),
        ):
            assert client.post(path, json=body).status_code == 201
        victim_incident = create_incident(client, title="Victim")["id"]
        victim_task = client.post(
            f"/api/incidents/{victim_incident}/tasks", json={"title": "Victim task"}
        ).json()["id"]
        channel = client.post(
            "/api/notification-channels",
            json={"name": "hooks", "config": {"kind": "webhook", "url": "https://hooks.example/x"}},
        ).json()["id"]
        victim_channel = client.post(
            "/api/notification-channels",
            json={"name": "victim", "config": {"kind": "webhook", "url": "https://h.example/v"}},
        ).json()["id"]
        alert = client.post(
            "/api/alerts",
            json={"title": "High error rate", "labels": {"service": "payment-service"}},
        )
        assert alert.status_code == 201, alert.text
        ids = {
            "service_id": service["id"],
            "incident_id": incident_id,
            "slo_id": create_slo(client, service["id"])["id"],
            "channel_id": channel,
            "alert_id": alert.json()["id"],
            "victim_service": create_service(client, name="victim-service")["id"],
            "victim_incident": victim_incident,
            "victim_task": victim_task,
            "victim_slo": create_slo(client, service["id"], name="victim-slo")["id"],
            "victim_channel": victim_channel,
        }
        world = World(client, ids)
        world.baseline = _snapshot(world)
        yield world


def _send(world: World, method: str, path: str, **options: Any) -> Any:
    """One request, which must not be answered with a 5xx; a 4xx must be problem+json."""
    url = path.format(**world.ids)
    response = world.client.request(method, url, **options)
    shown = {
        k: (v if len(repr(v)) < 200 else f"<{len(repr(v))} chars>") for k, v in options.items()
    }
    assert response.status_code < 500, f"{method} {url} {shown}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), (
            method,
            url,
            response.text[:300],
        )
        problem = response.json()
        assert problem["status"] == response.status_code
        assert problem["title"]
    return response


def _named(response: Any) -> set[str]:
    """The fields a problem response names."""
    return {error["field"] for error in response.json().get("errors") or []}


def _names(response: Any, dotted: str) -> bool:
    """Whether the problem names the field at `dotted`: exactly, by an item of it
    (`status.0`), or with the tag of a union in the path (`config.webhook.url`)."""
    wanted = dotted.split(".")
    for named in _named(response):
        parts = named.split(".")
        if parts[: len(wanted)] == wanted or wanted[: len(parts)] == parts:
            return True  # the field, an item of it, or the free-form JSON field holding it
        if any(parts[:i] + parts[i + 1 :] == wanted for i in range(len(parts))):
            return True
    return False


# --- The write endpoints and their fields -------------------------------------------------


@dataclass(frozen=True)
class Write:
    """A write endpoint: a valid body, and where its text fields are (dotted paths)."""

    method: str
    path: str
    body: dict[str, Any]
    text: tuple[str, ...]
    numbers: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()  # fields that must differ on every create (unique names)


WRITES: dict[str, Write] = {
    "create service": Write(
        "POST",
        "/api/services",
        {"name": "svc", "team": "t", "description": "d"},
        ("name", "team", "description", "repository_url"),
        unique=("name",),
    ),
    "update service": Write(
        "PATCH",
        "/api/services/{victim_service}",
        {"description": "d"},
        ("name", "team", "description", "repository_url"),
        unique=("name",),
    ),
    "create incident": Write(
        "POST",
        "/api/incidents",
        {"title": "Down", "severity": "high"},
        ("title", "description", "root_cause", "commander"),
    ),
    "update incident": Write(
        "PATCH",
        "/api/incidents/{victim_incident}",
        {"root_cause": "pool"},
        ("title", "description", "root_cause", "commander"),
    ),
    "add timeline event": Write(
        "POST",
        "/api/incidents/{victim_incident}/timeline",
        {"type": "note", "title": "t", "metadata": {"k": "v"}},
        ("type", "source", "title", "description", "metadata.k"),
    ),
    "create task": Write(
        "POST",
        "/api/incidents/{victim_incident}/tasks",
        {"title": "t"},
        ("title", "description", "assignee"),
    ),
    "update task": Write(
        "PATCH",
        "/api/incidents/{victim_incident}/tasks/{victim_task}",
        {"title": "t"},
        ("title", "description", "assignee"),
    ),
    "create SLO": Write(
        "POST",
        "/api/slos",
        {"service_id": "{service_id}", "name": "slo", "objective": 99.5},
        ("name", "description", "timezone"),
        ("objective", "window_days", "error_budget_remaining"),
        unique=("name",),
    ),
    "update SLO": Write(
        "PATCH",
        "/api/slos/{victim_slo}",
        {"objective": 99.0},
        ("name", "description", "timezone"),
        ("objective", "window_days", "error_budget_remaining"),
        unique=("name",),
    ),
    "SLO with a PromQL SLI": Write(
        "POST",
        "/api/slos",
        {
            "service_id": "{service_id}",
            "name": "ratio",
            "objective": 99.5,
            "sli": {
                "kind": "ratio",
                "errors": 'errors_total{code="500"}',
                "total": 'requests_total{job="api"}',
            },
        },
        ("sli.errors", "sli.total"),
        unique=("name",),
    ),
    "ingest an alert": Write(
        "POST",
        "/api/alerts",
        {"title": "t", "labels": {"service": "payment-service"}, "annotations": {"a": "b"}},
        ("title", "severity", "fingerprint", "generator_url", "labels.service", "annotations.a"),
    ),
    "Alertmanager webhook": Write(
        "POST",
        "/api/integrations/alertmanager",
        {
            "version": "4",
            "status": "firing",
            "receiver": "rs",
            "groupKey": '{}:{alertname="x"}',
            "truncatedAlerts": 0,
            "externalURL": "http://am:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": "x"}, "annotations": {}}],
        },
        ("receiver", "groupKey", "externalURL", "version", "alerts.0.labels.alertname"),
        ("truncatedAlerts",),
    ),
    "create webhook channel": Write(
        "POST",
        "/api/notification-channels",
        {"name": "c", "config": {"kind": "webhook", "url": "https://h.example/a", "secret": "s"}},
        ("name", "config.url", "config.secret"),
        unique=("name",),
    ),
    "create email channel": Write(
        "POST",
        "/api/notification-channels",
        {
            "name": "m",
            "config": {
                "kind": "email",
                "host": "smtp.example.com",
                "sender": "rs@example.com",
                "recipients": ["ops@example.com"],
                "username": "u",
                "password": "p",
            },
        },
        (
            "name",
            "config.host",
            "config.sender",
            "config.recipients.0",
            "config.username",
            "config.password",
        ),
        ("config.port",),
        unique=("name",),
    ),
    "update channel": Write(
        "PATCH",
        "/api/notification-channels/{victim_channel}",
        {"config": {"kind": "slack", "token": "xoxb-1", "channel": "#ops"}},
        ("name", "config.token", "config.channel", "config.api_base"),
        unique=("name",),
    ),
    "create correlation rule": Write(
        "POST",
        "/api/correlation-rules",
        {"name": "r", "matchers": ['service="checkout"'], "position": 500},
        ("name", "description", "matchers.0"),
        ("position", "threshold", "window_seconds"),
        unique=("name",),
    ),
    "add a member": Write(
        "POST",
        "/api/organization/members",
        {"email": "new@example.com", "name": "New"},
        ("email", "name"),
        unique=("email",),
    ),
    "create policy": Write(
        "POST",
        "/api/notification-policies",
        {
            "name": "p",
            "events": ["incident.created"],
            "services": ["payment-service"],
            "teams": ["payments"],
            "channel_ids": ["{channel_id}"],
        },
        ("name", "services.0", "teams.0"),
        unique=("name",),
    ),
}


def _fill_ids(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if value.startswith("{") and value.endswith("_id}") else value
    if isinstance(value, dict):
        return {key: _fill_ids(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill_ids(item, ids) for item in value]
    return value


def _with(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of `body` with the field at `dotted` (e.g. `alerts.0.labels.x`) set."""
    copy: Any = json.loads(json.dumps(body))
    *parents, last = dotted.split(".")
    node = copy
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return dict(copy)


def _body(world: World, write: Write, **fields: Any) -> dict[str, Any]:
    """The endpoint's valid body, its unique fields made unique, with `fields` set."""
    body: dict[str, Any] = _fill_ids(write.body, world.ids)
    for name in write.unique:
        unique = f"u{next(_unique)}@example.com" if name == "email" else f"{name}-{next(_unique)}"
        body = _with(body, name, unique)
    for dotted, value in fields.items():
        body = _with(body, dotted, value)
    return body


def _stored_in(body: dict[str, Any], dotted: str) -> str:
    """The text at `dotted` in a request body ("" when there is none)."""
    node: Any = body
    for part in dotted.split("."):
        if isinstance(node, list) and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return ""
    return node if isinstance(node, str) else ""


def _stored(response: Any, dotted: str) -> Any:
    """The value a 2xx response shows at `dotted`, if it shows one."""
    node: Any = response.json()
    for part in dotted.split("."):
        if isinstance(node, list):
            node = node[int(part)] if int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


WRITE_IDS = list(WRITES)


@pytest.mark.parametrize("write", WRITE_IDS)
def test_sql_injection_in_every_field_is_refused_or_stored_verbatim(
    world: World, write: str
) -> None:
    endpoint = WRITES[write]
    for number, dotted in enumerate(endpoint.text):
        injection = INJECTIONS[number % len(INJECTIONS)]
        value = f"{injection} {next(_unique)}" if dotted in endpoint.unique else injection
        response = _send(
            world, endpoint.method, endpoint.path, json=_body(world, endpoint, **{dotted: value})
        )
        if response.status_code < 300:
            shown = _stored(response, dotted)
            assert shown in (None, value) or isinstance(shown, dict), (dotted, shown)
        else:
            assert response.status_code == 422, response.text
    _assert_intact(world)


@pytest.mark.parametrize("write", WRITE_IDS)
def test_a_nul_byte_in_any_text_field_is_a_422_naming_it(world: World, write: str) -> None:
    endpoint = WRITES[write]
    for dotted in endpoint.text:
        # NUL alone, and inside the field's valid value (an address, a URL, a PromQL
        # selector), where no other check stands in the way.
        valid = _stored_in(_body(world, endpoint), dotted)
        inside = {valid[:i] + "\x00" + valid[i:] for i in (1, len(valid) - 2, len(valid))}
        for value in {NUL} | inside - {"\x00"}:
            body = _body(world, endpoint, **{dotted: value})
            response = _send(world, endpoint.method, endpoint.path, json=body)
            assert response.status_code == 422, (dotted, value, response.text)
            assert _names(response, dotted), (dotted, _named(response))
    # In a key, too (labels, metadata).
    for key_holder in ("labels", "annotations", "metadata"):
        if key_holder in endpoint.body:
            body = _body(world, endpoint, **{key_holder: {"k\x00": "v"}})
            assert _send(world, endpoint.method, endpoint.path, json=body).status_code == 422
    _assert_intact(world)


HUGE_NUMBERS: dict[str, bytes] = {
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "2**64": str(2**64).encode(),
    "-2**63-1": str(-(2**63) - 1).encode(),
    "2**31": str(2**31).encode(),
    "5000 digits": b"9" * 5000,
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "1e-400": b"1e-400",
    "string": b'"12"',
}


@pytest.mark.parametrize("write", [name for name in WRITE_IDS if WRITES[name].numbers])
def test_huge_numbers_in_every_numeric_field_are_refused(world: World, write: str) -> None:
    endpoint = WRITES[write]
    marker = "__NUMBER__"
    for dotted in endpoint.numbers:
        template = json.dumps(_body(world, endpoint, **{dotted: marker}))
        for label, number in HUGE_NUMBERS.items():
            content = template.replace(f'"{marker}"', number.decode()).encode()
            response = _send(
                world,
                endpoint.method,
                endpoint.path,
                content=content,
                headers={"content-type": "application/json"},
            )
            if response.status_code < 300:  # only values within the field's range pass
                assert label in ("1e-400", "2**31", "string") or dotted == "truncatedAlerts", (
                    dotted,
                    label,
                    response.text,
                )
    _assert_intact(world)


@pytest.mark.parametrize("write", WRITE_IDS)
def test_bodies_that_are_not_json_or_not_utf8_or_too_deep_are_4xx(world: World, write: str) -> None:
    endpoint = WRITES[write]
    valid = json.dumps(_body(world, endpoint)).encode()
    json_header = {"content-type": "application/json"}
    not_utf8, too_deep = "not valid UTF-8", f"deeper than {MAX_JSON_DEPTH} levels"
    cases: list[tuple[bytes, dict[str, str], set[int], str]] = [
        # Wrong content types, with a perfectly good JSON body.
        (valid, {"content-type": "text/plain"}, {415}, "application/json"),
        (valid, {"content-type": "application/x-www-form-urlencoded"}, {415}, ""),
        (valid, {"content-type": "multipart/form-data; boundary=x"}, {415}, ""),
        (valid, {"content-type": "application/xml"}, {415}, ""),
        (valid, {}, {415}, ""),  # no content type at all
        (b"", {}, {422}, "body"),
        (b"name=x&title=y", {"content-type": "application/x-www-form-urlencoded"}, {415}, ""),
        # Not UTF-8: raw bytes, overlong encodings, UTF-16.
        (valid.replace(b'"', b'"\xff', 1), json_header, {400}, not_utf8),
        (b'{"title": "\xc0\xaf\xc0\xae"}', json_header, {400}, not_utf8),
        (valid.decode().encode("utf-16"), json_header, {400}, not_utf8),
        # A lone surrogate, escaped: valid JSON, but no UTF-8 encoding exists for it.
        (valid.replace(b'": "', b'": "\\ud800', 1), json_header, {422}, "Validation failed"),
        # Deep nesting: refused before any parser recurses.
        (b"[" * 100_000 + b"]" * 100_000, json_header, {400}, too_deep),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, json_header, {400}, too_deep),
        (b"[" * 100_000, json_header, {400}, too_deep),  # and never closed
        (b"[" * 500 + b"]" * 500, json_header, {422}, ""),  # parsed safely, then refused
        (b'["' + b"[" * 100_000 + b'"]', json_header, {422}, ""),  # brackets in a string
        # Not JSON at all, or not an object.
        (b"{" + b"\x00" * 100 + b"}", json_header, {400}, "JSON"),
        (b"null", json_header, {422}, ""),
        (b"[]", json_header, {422}, ""),
        (b'"' + b"x" * 1000 + b'"', json_header, {422}, ""),
        (b"1e400", json_header, {422}, ""),
    ]
    for content, headers, expected, detail in cases:
        response = _send(world, endpoint.method, endpoint.path, content=content, headers=headers)
        assert response.status_code in expected, (content[:60], headers, response.text[:300])
        assert detail in response.text, (content[:60], detail, response.text[:300])
    _assert_intact(world)


@pytest.mark.parametrize("write", ["create service", "add timeline event", "ingest an alert"])
def test_ten_megabyte_bodies_are_413_declared_or_streamed(world: World, write: str) -> None:
    endpoint = WRITES[write]
    big = json.dumps(_body(world, endpoint, **{endpoint.text[-1]: "x" * TEN_MB})).encode()
    json_header = {"content-type": "application/json"}
    response = _send(world, endpoint.method, endpoint.path, content=big, headers=json_header)
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it streams
        for start in range(0, len(big), 1024 * 1024):
            yield big[start : start + 1024 * 1024]

    response = _send(world, endpoint.method, endpoint.path, content=chunks(), headers=json_header)
    assert response.status_code == 413
    _assert_intact(world)


def test_deeply_nested_and_huge_free_form_json_is_422_naming_the_field(world: World) -> None:
    path = "/api/incidents/{victim_incident}/timeline"
    deep: dict[str, Any] = {}
    for _ in range(40):
        deep = {"a": deep}
    for raw in (b"1e400", b"-1e400", b"NaN", b"Infinity", str(2**64).encode()):
        content = b'{"type": "note", "title": "t", "metadata": {"x": ' + raw + b"}}"
        response = _send(
            world, "POST", path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (raw, response.text[:300])
        assert "metadata" in _named(response)
    deeper: dict[str, Any] = {}
    for _ in range(300):  # within the body's parser bound, beyond the field's own
        deeper = {"a": deeper}
    for metadata, field_name in (
        (deep, "metadata"),
        (deeper, "metadata"),
        ({"list": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}, "metadata"),
        ({"big": 2**64}, "metadata"),
        ({"k": "x" * 70_000}, "metadata"),
        ({f"k{i}": i for i in range(10_000)}, "metadata"),
    ):
        response = _send(
            world, "POST", path, json={"type": "note", "title": "t", "metadata": metadata}
        )
        assert response.status_code == 422, response.text[:300]
        assert field_name in _named(response)
    _assert_intact(world)


def test_huge_arrays_are_refused(world: World) -> None:
    service_id, channel_id = world.ids["service_id"], world.ids["channel_id"]
    for method, path, body in (
        ("POST", "/api/incidents", {"title": "t", "service_ids": [service_id] * 10_000}),
        ("POST", "/api/alerts", {"title": "t", "labels": {f"l{i}": "v" for i in range(5000)}}),
        (  # small enough for the body limit: the batch limit (ALERT_MAX_BATCH) refuses it
            "POST",
            "/api/integrations/alertmanager",
            {"alerts": [{"status": "firing", "labels": {"a": str(i)}} for i in range(1_500)]},
        ),
        (
            "POST",
            "/api/notification-policies",
            {"name": "p", "events": ["incident.created"] * 1000, "channel_ids": [channel_id]},
        ),
        (
            "POST",
            "/api/notification-policies",
            {"name": "p", "events": ["incident.created"], "channel_ids": [channel_id] * 1000},
        ),
        ("POST", "/api/notification-policies", {"name": "p", "events": [], "channel_ids": []}),
    ):
        response = _send(world, method, path, json=body)
        assert response.status_code == 422, (path, response.text[:300])
    _assert_intact(world)


# --- Query parameters ----------------------------------------------------------------------


# The application as routes and schemas only (no lifespan, no database).
APP = create_app(Settings(database_url="sqlite:///./data/unused.db", **QUIET_ENGINE))


def _list_routes() -> dict[str, list[dict[str, Any]]]:
    """Every GET operation of the API and its query parameters, from the OpenAPI document."""
    routes: dict[str, list[dict[str, Any]]] = {}
    for path, operations in APP.openapi()["paths"].items():
        get = operations.get("get")
        if get is None or path.startswith(SKIPPED_GETS) or path == "/health":
            continue
        routes[path] = [p for p in get.get("parameters", []) if p["in"] == "query"]
    return routes


LIST_ROUTES = _list_routes()
PATH_IDS = {
    "{incident_id}": "incident_id",
    "{service_id}": "service_id",
    "{slo_id}": "slo_id",
    "{channel_id}": "channel_id",
    "{alert_id}": "alert_id",
}


def _route_path(world: World, template: str) -> str:
    """The route with the seeded rows' ids (and unknown ids elsewhere: a 404 is fine)."""
    path = template
    for placeholder, name in PATH_IDS.items():
        path = path.replace(placeholder, world.ids[name])
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + "00000000-0000-4000-8000-000000000001" + path[end + 1 :]
    return path


@pytest.mark.parametrize("route", list(LIST_ROUTES))
def test_sql_injection_and_nul_in_every_query_parameter(world: World, route: str) -> None:
    path = _route_path(world, route)
    for number, parameter in enumerate(LIST_ROUTES[route]):
        name = parameter["name"]
        for value in (INJECTIONS[number % len(INJECTIONS)], "%_\\"):
            _send(world, "GET", path, params={name: value})
        response = _send(world, "GET", path, params={name: NUL})
        assert response.status_code == 422, (name, response.text)
        assert _names(response, name), (name, response.text)
    _assert_intact(world)


@pytest.mark.parametrize(
    "query",
    [
        "limit=99999999999999999999999999999999999999",
        "limit=-1",
        "limit=0",
        "limit=1.5",
        "limit=1e3",
        "limit=",
        "limit=%00",
        "limit=0x10",
        "limit=1&limit=2",
        "cursor=a&cursor=b",
        "q=a&q=b",
        "q=" + "x" * 20_000,
        "q=%ff%fe",
        "q=%c0%af",
        "q=%ed%a0%80",  # an encoded lone surrogate
        "status=open" + "&status=open" * 2_000,
        "severity=" + "&severity=".join(["critical"] * 2_000),
        "&".join(f"p{i}=1" for i in range(2_000)),
        "service_id=%27%20OR%201%3D1",
        "created_after=9999-99-99",
        "created_after=" + "9" * 5000,
    ],
)
def test_query_parameter_abuse_is_a_clear_4xx(world: World, query: str) -> None:
    response = _send(world, "GET", "/api/incidents?" + query)
    assert 400 <= response.status_code < 500, (query[:80], response.text[:300])
    _assert_intact(world)


@pytest.mark.parametrize("query", ["q=%", "q=%zz", "q=%25", "q=a+b", "q=%E2%80%AE", "limit=%2B5"])
def test_odd_but_harmless_query_strings_are_served(world: World, query: str) -> None:
    """Not valid percent-encoding, or odd characters: taken literally, as Starlette does."""
    assert _send(world, "GET", "/api/incidents?" + query).status_code == 200


def test_a_repeated_single_valued_parameter_names_it(world: World) -> None:
    response = _send(world, "GET", "/api/services?limit=5&limit=10")
    assert response.status_code == 422
    assert "limit" in _named(response)
    both = _send(world, "GET", "/api/incidents?status=open&status=resolved")
    assert both.status_code == 200  # a list parameter may repeat


def test_injection_text_stored_verbatim_reads_back_verbatim(world: World) -> None:
    created = _send(world, "POST", "/api/incidents", json={"title": INJECTIONS[1]}).json()
    found = _send(world, "GET", "/api/incidents", params={"q": INJECTIONS[1], "limit": 500})
    assert created["id"] in [item["id"] for item in found.json()["items"]]
    assert _send(world, "GET", f"/api/incidents/{created['id']}").json()["title"] == INJECTIONS[1]
    _assert_intact(world)


def test_after_the_whole_table_every_row_is_still_there(world: World) -> None:
    """Runs last for each database (tests keep their order within a module)."""
    _assert_nothing_lost(world)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets inside a string do not count
        (b'{"a": "\\"[[[", "b": [[]]}', 3),  # nor after an escaped quote
        (b'{"a": "\\\\", "b": [[]]}', 3),  # an escaped backslash ends before the quote
        (b'["]]]]]]", [[["x"]]]]', 4),  # closers in a string cannot hide real depth
        (b"1", 0),
    ],
)
def test_json_depth_is_measured_outside_strings(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


# --- Every text field of every request body, statically ----------------------------------


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router
            yield from _api_routes(route.original_router.routes)


def _text_fields(schema: Any, path: str, guarded: bool, found: dict[str, Any]) -> None:
    """Collect into `found` each str schema of a core schema: path -> (str schema, guarded),
    `guarded` when a validator on the way refuses NUL (`NoNul`, or a bounded JSON object)."""
    kind = schema.get("type")
    if kind == "definitions":
        found.setdefault("__defs__", {}).update({d["ref"]: d for d in schema["definitions"]})
        _text_fields(schema["schema"], path, guarded, found)
    elif kind == "definition-ref":
        ref = schema["schema_ref"]
        if (ref, path) not in found.setdefault("__seen__", set()):
            found["__seen__"].add((ref, path))
            _text_fields(found["__defs__"][ref], path, guarded, found)
    elif kind and kind.startswith("function-"):
        function = getattr(schema.get("function", {}).get("function"), "__name__", "")
        inner_guarded = guarded or function in ("_no_nul", "_bounded_json")
        if "schema" in schema:
            _text_fields(schema["schema"], path, inner_guarded, found)
    elif kind == "str":
        found[path] = (schema, guarded)
    elif kind == "model-fields":
        for name, field_schema in schema["fields"].items():
            _text_fields(field_schema["schema"], f"{path}.{name}", guarded, found)
    elif kind == "tagged-union":
        for tag, choice in schema["choices"].items():
            _text_fields(choice, f"{path}.{tag}", guarded, found)
    elif kind == "union":
        for choice in schema["choices"]:
            _text_fields(choice[0] if isinstance(choice, tuple) else choice, path, guarded, found)
    elif kind in ("list", "set", "tuple", "frozenset"):
        items = schema.get("items_schema")
        for item in items if isinstance(items, list) else [items] if items else []:
            _text_fields(item, f"{path}[]", guarded, found)
    elif kind == "dict":
        if schema.get("keys_schema"):
            _text_fields(schema["keys_schema"], f"{path}{{key}}", guarded, found)
        if schema.get("values_schema"):
            _text_fields(schema["values_schema"], f"{path}{{}}", guarded, found)
    else:
        for key in ("schema", "inner_schema", "strict_schema"):
            if key in schema:
                _text_fields(schema[key], path, guarded, found)
        for step in schema.get("steps", []):
            _text_fields(step, path, guarded, found)


def _pattern_takes_nul(pattern: str) -> bool:
    """Whether some string with a NUL in it fully matches `pattern` (searched by hypothesis)."""
    strategy = st.from_regex(pattern, fullmatch=True)
    try:
        hypothesis.find(
            strategy,
            lambda text: "\x00" in text,
            settings=hypothesis.settings(max_examples=300, database=None),
        )
    except hypothesis.errors.NoSuchExample:
        return False
    return True


def test_every_text_field_of_every_request_body_refuses_nul_and_is_bounded() -> None:
    """NUL cannot be stored by PostgreSQL: every text field must refuse it (`NoNul`, or a
    pattern no NUL can match), and have a maximum length, so that a new field cannot
    forget. Query parameters are covered for every route at once by `check_query`."""
    problems = []
    for route in _api_routes(APP.routes):
        annotation = route.body_field.field_info.annotation if route.body_field else None
        if annotation is None:
            continue
        found: dict[str, Any] = {}
        _text_fields(TypeAdapter(annotation).core_schema, "", False, found)
        for path, (schema, guarded) in found.items():
            if path.startswith("__"):
                continue
            pattern = schema.get("pattern")
            where = f"{sorted(route.methods or ['?'])[0]} {route.path} body{path}"
            if not guarded and (pattern is None or _pattern_takes_nul(pattern)):
                problems.append(f"{where}: takes NUL")
            if not guarded and schema.get("max_length") is None and pattern is None:
                problems.append(f"{where}: has no maximum length")
    assert not problems, "\n".join(problems)

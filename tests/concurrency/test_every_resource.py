"""Every resource with `PATCH` or `DELETE` has an `ETag` and honours `If-Match`.

One table row per resource: how to create it, read it, change it twice and whether it can
be deleted. Each row walks the same story: the 201 carries `ETag: "1"`, `GET` repeats the
current one, a `PATCH` with the current tag answers the next one, a stale tag is 412 and
changes nothing, and (where there is a `DELETE`) a stale delete is 412 and leaves the
resource in place while a current one removes it. Run with identities on (an owner's
token), so that tokens, members and the organization are covered too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.support.api import assert_problem
from tests.support.identity import bearer, secured, user_token

_numbers = itertools.count(1)
Json = dict[str, Any]


@pytest.fixture
def owner(settings: Settings) -> Iterator[TestClient]:
    """A client of an app that requires tokens, sending an owner's."""
    secure = secured(settings)
    token = user_token(secure, "owner", email=f"owner-{next(_numbers)}@example.com")
    with TestClient(create_app(secure), headers=bearer(token)) as client:
        yield client


@dataclass(frozen=True)
class Resource:
    """How the story is told for one kind of resource."""

    # Creates one (201 asserted by the story); returns its path.
    create: Callable[[TestClient], tuple[str, str, Json]]
    changes: tuple[Json, Json] | None  # two PATCH bodies that each change something
    deletable: bool
    # Reads the current representation and its ETag (None where only a list shows it).
    read: Callable[[TestClient, str], tuple[Json | None, str | None]] = field(
        default=lambda client, path: _get(client, path)
    )


def _get(client: TestClient, path: str) -> tuple[Json | None, str | None]:
    response = client.get(path)
    if response.status_code == 404:
        return None, None
    assert response.status_code == 200, response.text
    return response.json(), response.headers["etag"]


def _post(client: TestClient, path: str, body: Json) -> tuple[str, str, Json]:
    """POST; (Location, ETag, body) of the 201."""
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.headers["location"], response.headers["etag"], response.json()


def _named(prefix: str) -> str:
    return f"{prefix}-{next(_numbers)}"


def _service(client: TestClient) -> tuple[str, str, Json]:
    return _post(client, "/api/services", {"name": _named("svc")})


def _incident(client: TestClient) -> tuple[str, str, Json]:
    return _post(client, "/api/incidents", {"title": "Checkout down"})


def _task(client: TestClient) -> tuple[str, str, Json]:
    incident, _, _ = _incident(client)
    return _post(client, f"{incident}/tasks", {"title": "Roll back"})


def _slo(client: TestClient) -> tuple[str, str, Json]:
    _, _, service = _service(client)
    body = {"service_id": service["id"], "name": _named("slo"), "objective": 99.9}
    return _post(client, "/api/slos", body)


def _channel(client: TestClient) -> tuple[str, str, Json]:
    config = {"kind": "webhook", "url": "https://hooks.example/rs", "secret": "s3cret-value"}
    return _post(client, "/api/notification-channels", {"name": _named("ch"), "config": config})


def _policy(client: TestClient) -> tuple[str, str, Json]:
    _, _, channel = _channel(client)
    body = {"name": _named("pol"), "events": ["incident.created"], "channel_ids": [channel["id"]]}
    return _post(client, "/api/notification-policies", body)


def _rule(client: TestClient) -> tuple[str, str, Json]:
    return _post(client, "/api/correlation-rules", {"name": _named("rule")})


def _account(client: TestClient) -> tuple[str, str, Json]:
    return _post(client, "/api/service-accounts", {"name": _named("ci")})


def _token(client: TestClient) -> tuple[str, str, Json]:
    return _post(client, "/api/tokens", {"name": _named("tok")})


def _member(client: TestClient) -> tuple[str, str, Json]:
    body = {"email": f"{_named('m')}@example.com", "role": "viewer"}
    _, etag, member = _post(client, "/api/organization/members", body)
    return f"/api/organization/members/{member['user_id']}", etag, member


def _read_member(client: TestClient, path: str) -> tuple[Json | None, str | None]:
    user_id = path.rsplit("/", 1)[1]
    members = client.get("/api/organization/members", params={"limit": 200}).json()["items"]
    found = [member for member in members if member["user_id"] == user_id]
    return (found[0], None) if found else (None, None)


def _organization(client: TestClient) -> tuple[str, str, Json]:
    response = client.get("/api/organization")  # it exists already; there is no POST here
    assert response.status_code == 200, response.text
    return "/api/organization", response.headers["etag"], response.json()


RESOURCES = {
    "service": Resource(_service, ({"team": "a"}, {"team": "b"}), deletable=True),
    "incident": Resource(_incident, ({"title": "A"}, {"title": "B"}), deletable=False),
    "task": Resource(_task, ({"assignee": "alice"}, {"assignee": "bob"}), deletable=True),
    "slo": Resource(_slo, ({"name": "a"}, {"name": "b"}), deletable=True),
    "notification channel": Resource(_channel, ({"name": "a"}, {"name": "b"}), deletable=True),
    "notification policy": Resource(_policy, ({"name": "a"}, {"name": "b"}), deletable=True),
    "correlation rule": Resource(_rule, ({"threshold": 2}, {"threshold": 3}), deletable=True),
    "service account": Resource(_account, ({"role": "admin"}, {"disabled": True}), True),
    "token": Resource(_token, None, deletable=True),
    "member": Resource(_member, ({"role": "responder"}, {"role": "admin"}), True, _read_member),
    "organization": Resource(_organization, ({"name": "Acme"}, {"name": "Beta"}), False),
}


def _without_version(body: Json | None) -> Json | None:
    return None if body is None else {k: v for k, v in body.items() if k not in {"version"}}


def test_every_resource_has_an_etag_and_honours_if_match(owner: TestClient) -> None:
    # One app for the whole table: starting one per resource would take most of the time.
    for kind, resource in RESOURCES.items():
        try:
            _story(owner, kind, resource)
        except AssertionError as failed:
            raise AssertionError(f"{kind}: {failed}") from failed


def _story(owner: TestClient, kind: str, resource: Resource) -> None:
    path, etag, created = resource.create(owner)
    version = created["version"]
    assert etag == f'"{version}"'
    body, read_etag = resource.read(owner, path)
    assert body is not None
    assert body["version"] == version
    assert read_etag in (None, etag)

    if resource.changes is not None:
        first, second = resource.changes
        response = owner.patch(path, json=first, headers={"If-Match": etag})
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version + 1
        assert response.headers["etag"] == f'"{version + 1}"'
        before, _ = resource.read(owner, path)

        stale = owner.patch(path, json=second, headers={"If-Match": etag})
        assert assert_problem(stale, 412)["current_version"] == version + 1
        assert resource.read(owner, path)[0] == before
        etag = response.headers["etag"]

    if resource.deletable:
        before, _ = resource.read(owner, path)
        assert_problem(owner.delete(path, headers={"If-Match": '"999"'}), 412)
        assert resource.read(owner, path)[0] == before
        assert owner.delete(path, headers={"If-Match": etag}).status_code == 204
        after, _ = resource.read(owner, path)
        if kind == "token":  # revoked, not removed: the record stays, at a new version
            assert after is not None
            assert after["revoked_at"] is not None
            assert after["version"] == int(etag.strip('"')) + 1
        else:
            assert after is None

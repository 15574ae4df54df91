"""Real rows for the fuzzer to aim at.

Random UUIDs in a path almost always meet a 404, which tests the 404 and nothing behind it.
So before fuzzing, a few rows of every kind are created through the API, and the
generation hooks (harness.py) put their ids into about half of the generated requests.
A DELETE that succeeds on a seeded row is followed by a new row in its place, so that the
operations fuzzed after it still find something to act on.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from schemathesis.python.asgi import ASGIClient

log = logging.getLogger(__name__)

SLOTS = 3
Slot = dict[str, str]

_numbers = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"fuzz-{prefix}-{next(_numbers)}"


class SeedError(RuntimeError):
    """The API refused to create a seed row."""


class Seeds:
    """A few rows of every kind, created through the API, by the path parameter naming them.

    A slot holds every path parameter of its row (a task's slot holds its `incident_id` and
    `task_id`), keyed by the name of the last path parameter of the operations that use it.
    """

    def __init__(self, client: ASGIClient) -> None:
        self._client = client
        self._slots: dict[str, list[Slot]] = {}
        self._makers: dict[str, Callable[[], Slot]] = {
            "service_id": self._service,
            "incident_id": self._incident,
            "event_id": self._event,
            "task_id": self._task,
            "slo_id": self._slo,
            "alert_id": self._alert,
            "rule_id": self._rule,
            "channel_id": self._channel,
            "policy_id": self._policy,
            "account_id": self._account,
            "token_id": self._token,
            "user_id": self._member,
        }

    def create_all(self, *, wait_for_groups: float = 0.0) -> None:
        """Fill every kind's slots; a kind the API refuses is left empty, with a warning.

        Alert groups come from the background correlator, when it runs: `wait_for_groups`
        seconds are given to it to group the seed alerts.
        """
        for key, make in self._makers.items():
            try:
                self._slots[key] = [make() for _ in range(SLOTS)]
            except SeedError as error:  # the fuzzer still runs, with generated ids only
                log.warning("no seed rows for %s: %s", key, error)
                self._slots[key] = []
        # Rows the API makes by itself: alert groups and notifications (when their jobs
        # run), and the default organization.
        if self._slots["policy_id"]:  # an incident now is notified by the seed policies
            self._incident()
        deadline = time.monotonic() + wait_for_groups
        self._slots["group_id"] = self._listed("/api/alert-groups", "group_id")
        while not self._slots["group_id"] and time.monotonic() < deadline:
            time.sleep(0.2)
            self._slots["group_id"] = self._listed("/api/alert-groups", "group_id")
        self._slots["notification_id"] = self._listed("/api/notifications", "notification_id")
        self._slots["organization_id"] = self._listed("/api/organizations", "organization_id")

    def counts(self) -> dict[str, int]:
        """How many seed rows each kind has."""
        return {key: len(slots) for key, slots in self._slots.items()}

    def has(self, key: str) -> bool:
        """Whether rows of this kind exist to aim at."""
        return bool(self._slots.get(key))

    def slot(self, key: str, index: int) -> Slot:
        """The path parameters of seed row `index` (modulo the number there are)."""
        slots = self._slots[key]
        return dict(slots[index % len(slots)])

    def replace_deleted(self, key: str, path_parameters: dict[str, Any]) -> None:
        """After a DELETE that succeeded: a new row in the deleted seed row's place (or no
        row, should the API refuse to make one now)."""
        slots = self._slots.get(key, [])
        deleted = [
            slot
            for slot in slots
            if all(str(path_parameters.get(name)) == value for name, value in slot.items())
        ]
        for slot in deleted:
            slots.remove(slot)
            make = self._makers.get(key)
            try:
                if make is not None:
                    slots.append(make())
            except SeedError as error:
                log.warning("no new seed row for %s: %s", key, error)

    # --- one maker per kind: each creates a row and returns its slot ---

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(path, json=body)
        if response.status_code not in (200, 201):
            raise SeedError(f"POST {path}: {response.status_code} {response.text[:300]}")
        created: dict[str, Any] = response.json()
        return created

    def _listed(self, path: str, key: str) -> list[Slot]:
        response = self._client.get(path, params={"limit": SLOTS})
        if response.status_code != 200:
            return []
        body = response.json()
        items = body["items"] if isinstance(body, dict) else body  # a page, or a bare list
        return [{key: str(item["id"])} for item in items[:SLOTS]]

    def _service(self) -> Slot:
        created = self._post("/api/services", {"name": _unique("service"), "team": "sre"})
        return {"service_id": created["id"]}

    def _incident(self) -> Slot:
        services = self._slots.get("service_id", [])
        body: dict[str, Any] = {"title": _unique("incident"), "severity": "high"}
        if services:
            body["service_ids"] = [services[0]["service_id"]]
        return {"incident_id": self._post("/api/incidents", body)["id"]}

    def _incident_id(self) -> str:
        incidents = self._slots.get("incident_id") or [self._incident()]
        return incidents[0]["incident_id"]

    def _event(self) -> Slot:
        incident_id = self._incident_id()
        body = {"type": "note", "title": _unique("note"), "description": "seeded"}
        created = self._post(f"/api/incidents/{incident_id}/timeline", body)
        return {"incident_id": incident_id, "event_id": created["id"]}

    def _task(self) -> Slot:
        incident_id = self._incident_id()
        created = self._post(f"/api/incidents/{incident_id}/tasks", {"title": _unique("task")})
        return {"incident_id": incident_id, "task_id": created["id"]}

    def _slo(self) -> Slot:
        service = (self._slots.get("service_id") or [self._service()])[0]
        body = {
            "service_id": service["service_id"],
            "name": _unique("slo"),
            "objective": 99.9,
            "window_days": 30,
            "sli": {
                "kind": "ratio",
                "errors": 'http_requests_total{code=~"5.."}',
                "total": "http_requests_total",
            },
        }
        try:
            created = self._post("/api/slos", body)
        except SeedError:  # a manual SLO, in case the SLI's shape has changed
            del body["sli"]
            created = self._post("/api/slos", body)
        return {"slo_id": created["id"]}

    def _alert(self) -> Slot:
        body = {"title": _unique("alert"), "severity": "critical", "labels": {"team": "sre"}}
        return {"alert_id": self._post("/api/alerts", body)["id"]}

    def _rule(self) -> Slot:
        body = {"name": _unique("rule"), "matchers": ['team="sre"'], "group_by": ["team"]}
        return {"rule_id": self._post("/api/correlation-rules", body)["id"]}

    def _channel(self) -> Slot:
        config = {
            "kind": "email",
            "host": "smtp.example.com",
            "sender": "studio@example.com",
            "recipients": ["sre@example.com"],
        }
        created = self._post(
            "/api/notification-channels", {"name": _unique("channel"), "config": config}
        )
        return {"channel_id": created["id"]}

    def _policy(self) -> Slot:
        channels = self._slots.get("channel_id") or [self._channel()]
        body = {
            "name": _unique("policy"),
            "events": ["incident.created", "incident.updated"],
            "channel_ids": [channels[0]["channel_id"]],
        }
        return {"policy_id": self._post("/api/notification-policies", body)["id"]}

    def _account(self) -> Slot:
        created = self._post("/api/service-accounts", {"name": _unique("account")})
        return {"account_id": created["id"]}

    def _token(self) -> Slot:
        account = self._account()
        body = {"name": _unique("token"), "service_account_id": account["account_id"]}
        return {"token_id": self._post("/api/tokens", body)["id"]}

    def _member(self) -> Slot:
        body = {"email": f"{_unique('member')}@example.com", "role": "viewer"}
        return {"user_id": self._post("/api/organization/members", body)["user_id"]}

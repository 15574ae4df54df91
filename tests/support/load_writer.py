"""A load generator for the crash and outage tests: threads that write through the HTTP API
as fast as the server lets them, and a ledger of every write the server acknowledged.

Each thread repeats one cycle: open an incident linked to two services, append a timeline
event to it, add a task, PATCH the incident (description and severity), PATCH the task,
and PATCH one of its older incidents again, so that rows are updated more than once. An
incident is only ever changed by the thread that created it, one request at a time, so
the order in which its revisions were sent is the order in which they can have been
committed: whatever the database holds must be the last acknowledged revision or one sent
after it (whose answer was lost with the process).

A request that gets no answer (the process was killed, or is not up yet) or a 503 is
recorded and tried no further: the thread moves on after a short pause. Nothing here
asserts; the tests read the ledger (`Ledger`) and compare it with the database.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

SEVERITIES = ("critical", "high", "medium", "low")
# Long enough that only a dead server leaves a request unanswered: a client timeout while
# the server still works on the request would let an "unknown" write commit after a later
# one, and the ordering argument above would not hold.
REQUEST_TIMEOUT_SECONDS = 30.0
# When the server is down, a pause before the next attempt: no busy loop on the shared cores.
PAUSE_SECONDS = 0.05
# How many of its own incidents a thread picks from for a second PATCH.
RECENT = 20


@dataclass
class Revision:
    """One PATCH sent: its number (1, 2, ...) per resource, its body, and whether a 2xx came."""

    number: int
    body: dict[str, Any]
    acknowledged: bool = False


@dataclass
class IncidentRecord:
    """An incident whose creation was acknowledged, with the PATCHes sent to it."""

    id: str
    title: str
    severity: str
    service_ids: tuple[str, ...]
    revisions: list[Revision] = field(default_factory=list)


@dataclass
class TaskRecord:
    """A task whose creation was acknowledged, with the PATCHes sent to it."""

    id: str
    incident_id: str
    title: str
    revisions: list[Revision] = field(default_factory=list)


@dataclass
class EventRecord:
    """A timeline event whose creation was acknowledged."""

    id: str
    incident_id: str
    title: str


@dataclass(frozen=True)
class Observation:
    """One request and what came of it (`status` None: no answer at all)."""

    started: float  # time.monotonic()
    seconds: float
    method: str
    kind: str  # "incident.create", "task.patch", "incident.list", ...
    status: int | None
    content_type: str
    retry_after: str | None
    body: str  # kept for the unexpected statuses only (for the failure message)


@dataclass
class Ledger:
    """What the writers sent and what the server acknowledged; guarded by `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    incidents: list[IncidentRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        """Writes that got a 2xx: creations and acknowledged PATCHes."""
        with self.lock:
            records: list[IncidentRecord | TaskRecord] = [*self.incidents, *self.tasks]
            patches = sum(
                revision.acknowledged for record in records for revision in record.revisions
            )
            return len(self.incidents) + len(self.events) + len(self.tasks) + patches

    def statuses(self) -> Counter[int | None]:
        """How many requests ended with each status (None: no answer)."""
        with self.lock:
            return Counter(observation.status for observation in self.observations)

    def unexpected(self, allowed: frozenset[int | None]) -> list[Observation]:
        """The observations whose status is not in `allowed`."""
        with self.lock:
            return [o for o in self.observations if o.status not in allowed]


class LoadWriter:
    """`with LoadWriter(base_url, service_ids) as writer:` writes until the block ends (or
    `stop()`); `writer.ledger` holds the outcome.

    `reads` adds a `GET /api/incidents` to each cycle (the outage test wants reads too).
    """

    def __init__(
        self,
        base_url: str,
        service_ids: list[str],
        *,
        threads: int = 4,
        reads: bool = False,
        seed: int = 0,
    ) -> None:
        assert len(service_ids) >= 2, "incidents are linked to two services"
        self.base_url = base_url
        self.service_ids = service_ids
        self.reads = reads
        self.ledger = Ledger()
        self._stopping = threading.Event()
        self._names = itertools.count(1)
        self._names_lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._run, args=(random.Random(seed + n),), name=f"writer-{n}", daemon=True
            )
            for n in range(threads)
        ]

    def __enter__(self) -> LoadWriter:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop after the requests in flight; waits for the threads."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 5)
            assert not thread.is_alive(), f"{thread.name} did not stop"

    def wait_for_acknowledgement(self, since: float, timeout: float = 60.0) -> None:
        """Wait until a write sent at `since` (time.monotonic()) or later got a 2xx."""
        deadline = time.monotonic() + timeout
        while True:
            with self.ledger.lock:
                if any(
                    o.started >= since and o.method != "GET" and o.status in (200, 201)
                    for o in reversed(self.ledger.observations)
                ):
                    return
            assert time.monotonic() < deadline, f"no write acknowledged within {timeout:.0f} s"
            time.sleep(0.02)

    def _name(self, prefix: str) -> str:
        with self._names_lock:
            return f"{prefix} {next(self._names)}"

    def _run(self, rng: random.Random) -> None:
        own: list[IncidentRecord] = []
        with httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
            while not self._stopping.is_set():
                self._cycle(client, rng, own)

    def _cycle(self, client: httpx.Client, rng: random.Random, own: list[IncidentRecord]) -> None:
        incident = self._create_incident(client, rng)
        if incident is not None:
            own.append(incident)
            self._add_event(client, incident)
            task = self._create_task(client, incident)
            self._patch_incident(client, incident, rng)
            if task is not None:
                self._patch_task(client, task)
        if len(own) > 1:
            self._patch_incident(client, rng.choice(own[-RECENT:]), rng)
        if self.reads:
            self._send(client, "GET", "/api/incidents", "incident.list", params={"limit": 5})

    def _send(
        self,
        client: httpx.Client,
        method: str,
        path: str,
        kind: str,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """The response, recorded; None (after a pause) when there was none or it was 503."""
        started = time.monotonic()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError:
            response = None
        seconds = time.monotonic() - started
        status = None if response is None else response.status_code
        usual = status is not None and (200 <= status < 300 or status == 503)
        observation = Observation(
            started=started,
            seconds=seconds,
            method=method,
            kind=kind,
            status=status,
            content_type="" if response is None else response.headers.get("content-type", ""),
            retry_after=None if response is None else response.headers.get("retry-after"),
            body="" if response is None or usual else response.text[:500],
        )
        with self.ledger.lock:
            self.ledger.observations.append(observation)
        if response is None or status == 503:
            time.sleep(PAUSE_SECONDS)
            return None
        return response

    def _create_incident(self, client: httpx.Client, rng: random.Random) -> IncidentRecord | None:
        title = self._name("Incident")
        severity = rng.choice(SEVERITIES)
        service_ids = tuple(rng.sample(self.service_ids, 2))
        body = {"title": title, "severity": severity, "service_ids": list(service_ids)}
        response = self._send(client, "POST", "/api/incidents", "incident.create", json=body)
        if response is None or response.status_code != 201:
            return None
        record = IncidentRecord(response.json()["id"], title, severity, service_ids)
        with self.ledger.lock:
            self.ledger.incidents.append(record)
        return record

    def _add_event(self, client: httpx.Client, incident: IncidentRecord) -> None:
        title = self._name("Note")
        response = self._send(
            client,
            "POST",
            f"/api/incidents/{incident.id}/timeline",
            "timeline.create",
            json={"type": "note", "title": title, "metadata": {"writer": "load"}},
        )
        if response is not None and response.status_code == 201:
            with self.ledger.lock:
                self.ledger.events.append(EventRecord(response.json()["id"], incident.id, title))

    def _create_task(self, client: httpx.Client, incident: IncidentRecord) -> TaskRecord | None:
        title = self._name("Task")
        response = self._send(
            client,
            "POST",
            f"/api/incidents/{incident.id}/tasks",
            "task.create",
            json={"title": title, "assignee": "load-writer"},
        )
        if response is None or response.status_code != 201:
            return None
        record = TaskRecord(response.json()["id"], incident.id, title)
        with self.ledger.lock:
            self.ledger.tasks.append(record)
        return record

    def _patch_incident(
        self, client: httpx.Client, incident: IncidentRecord, rng: random.Random
    ) -> None:
        number = len(incident.revisions) + 1
        body = {"description": f"revision {number}", "severity": rng.choice(SEVERITIES)}
        self._patch(client, f"/api/incidents/{incident.id}", "incident.patch", incident, body)

    def _patch_task(self, client: httpx.Client, task: TaskRecord) -> None:
        number = len(task.revisions) + 1
        body = {"title": f"{task.title} revision {number}", "status": "done"}
        path = f"/api/incidents/{task.incident_id}/tasks/{task.id}"
        self._patch(client, path, "task.patch", task, body)

    def _patch(
        self,
        client: httpx.Client,
        path: str,
        kind: str,
        record: IncidentRecord | TaskRecord,
        body: dict[str, Any],
    ) -> None:
        revision = Revision(len(record.revisions) + 1, body)
        with self.ledger.lock:  # recorded before it is sent: it may commit without an answer
            record.revisions.append(revision)
        response = self._send(client, "PATCH", path, kind, json=body)
        if response is not None and response.status_code == 200:
            with self.ledger.lock:
                revision.acknowledged = True

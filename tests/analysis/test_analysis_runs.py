"""Analysis runs, as a specification: queued with the incident, requested again on demand,
finished whatever the backends do, resumed after a crash, stored once, and drawing evidence
from logs, traces and Kubernetes.

Loki, Tempo and the Kubernetes API are the contract-test stand-ins of `tests/support/`
(they answer as the documented APIs do); a backend that is "down" listens on port 1, which
refuses connections at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reliability_studio.analysis.gatherer import Backends
from reliability_studio.analysis.models import AnalysisRun, Evidence
from reliability_studio.analysis.runner import MAX_ATTEMPTS, AnalysisRunner, AnalysisSettings
from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.db.models import TimelineEvent
from reliability_studio.telemetry.kubernetes import KubernetesClient, KubernetesConfig
from tests.support.analysis import (
    analysis_settings,
    evidence_of,
    timeline_of,
    wait_for_analysis,
)
from tests.support.api import assert_problem, create_incident, create_service
from tests.support.fake_kubernetes import (
    DEFAULT_TOKEN,
    FakeKubernetes,
    Terminated,
    container,
    deployment,
    event,
    pod,
)
from tests.support.fake_loki import NS_PER_SECOND, FakeLoki
from tests.support.fake_tempo import FakeSpan, FakeTempo, FakeTrace

T = TypeVar("T")
NAMESPACE = "default"  # where a service's workload is looked for when nobody said
PAYMENTS_POD = "payments-7d4b9c6f5-x2kqp"
LEASE = timedelta(seconds=30)
# Logs and traces of the incident start this long after the stand-ins are filled, so that they
# fall after the incident's creation (its window's start) even on a slow machine, and within
# the minute that the window lasts at least.
LEAD = 10


# --- the database, directly ---------------------------------------------------------------


def with_database(
    settings: Settings, use: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
) -> T:
    """`use(sessionmaker)` over the test's database, in an event loop of its own."""

    async def main() -> T:
        engine = create_engine(settings)
        try:
            return await use(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def runs_of(
    sessionmaker: async_sessionmaker[AsyncSession], incident_id: str
) -> list[AnalysisRun]:
    async with sessionmaker() as session:
        return list(
            await session.scalars(
                select(AnalysisRun).where(AnalysisRun.incident_id == uuid.UUID(incident_id))
            )
        )


async def count_rows(
    sessionmaker: async_sessionmaker[AsyncSession], incident_id: str
) -> tuple[int, int]:
    """(evidence rows, analysis timeline events) of the incident."""
    async with sessionmaker() as session:
        evidence = await session.scalar(
            select(func.count())
            .select_from(Evidence)
            .where(Evidence.incident_id == uuid.UUID(incident_id))
        )
        events = await session.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(
                TimelineEvent.incident_id == uuid.UUID(incident_id),
                TimelineEvent.actor == "analysis",
            )
        )
        return int(evidence or 0), int(events or 0)


# --- a cluster where payments is in trouble -----------------------------------------------


def payments_cluster(
    now: datetime, *, with_deployments: tuple[str, ...] = ("checkout", "payments")
) -> list[dict[str, Any]]:
    """Deployments (long-standing: no rollout in the window), a BackOff warning about a
    payments pod, and that pod OOM-killed ten minutes ago and now crash-looping."""
    long_ago = now - timedelta(days=30)
    objects: list[dict[str, Any]] = [
        deployment(
            NAMESPACE,
            name,
            images={name: f"registry.example/{name}:1.0.0"},
            revision=1,
            created=long_ago,
        )
        for name in with_deployments
    ]
    objects.append(
        event(
            NAMESPACE,
            "Pod",
            PAYMENTS_POD,
            "BackOff",
            f"Back-off restarting failed container payments in pod {PAYMENTS_POD}_default(5c1f)",
            first=now - timedelta(minutes=12),
            last=now - timedelta(minutes=1),
            count=9,
        )
    )
    killed = Terminated("OOMKilled", 137, now - timedelta(minutes=40), now - timedelta(minutes=10))
    objects.append(
        pod(
            NAMESPACE,
            PAYMENTS_POD,
            labels={"app": "payments"},
            containers=[
                container(
                    "payments",
                    "registry.example/payments:1.0.0",
                    ready=False,
                    restarts=5,
                    waiting=("CrashLoopBackOff", "back-off 2m40s restarting failed container"),
                    last_terminated=killed,
                )
            ],
            started=long_ago,
        )
    )
    return objects


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig with the stand-in API server and its bearer token."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "studio", "user": {"token": DEFAULT_TOKEN}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "studio"}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


# --- logs and traces ----------------------------------------------------------------------


def ns(moment: datetime) -> int:
    return int(moment.timestamp() * NS_PER_SECOND)


def payments_logs(loki: FakeLoki, opened_at: datetime) -> None:
    """An hour of one old, steady error line; then, from `LEAD` s after `opened_at` (about when the
    incident will be created), a new one: the database refusing connections."""
    steady = [
        (ns(opened_at - timedelta(minutes=m)), f"WARN cache miss error for key user:{m}")
        for m in range(5, 60, 5)
    ]
    new = [
        (
            ns(opened_at + timedelta(seconds=LEAD + s)),
            f"ERROR charge {1000 + s} failed: connection refused to 10.0.4.{s}:5432",
        )
        for s in range(0, 40, 2)
    ]
    loki.push({"service_name": "payments"}, steady + new)


def span(
    trace: int, number: int, name: str, service: str, start: datetime, **fields: Any
) -> FakeSpan:
    return FakeSpan(
        span_id=f"{trace:08x}{number:08x}",
        name=name,
        service=service,
        start_ns=ns(start),
        end_ns=ns(start + timedelta(milliseconds=120 - 10 * number)),
        **fields,
    )


def checkout_traces(opened_at: datetime, failing: int = 6, passing: int = 4) -> list[FakeTrace]:
    """Checkout requests from `LEAD` s after `opened_at`: `failing` of them fail because payments'
    charge fails (the error originates in payments), `passing` succeed."""
    traces = []
    for number in range(failing + passing):
        error = number < failing
        start = opened_at + timedelta(seconds=LEAD + number)
        root = span(number, 1, "POST /checkout", "checkout", start, error=error)
        call = span(
            number,
            2,
            "charge",
            "checkout",
            start,
            parent_id=root.span_id,
            kind="SPAN_KIND_CLIENT",
            error=error,
        )
        charge = span(
            number,
            3,
            "POST /charge",
            "payments",
            start,
            parent_id=call.span_id,
            error=error,
            status_message="connection refused" if error else "",
        )
        traces.append(FakeTrace(f"{number + 1:032x}", [root, call, charge]))
    return traces


# --- apps -----------------------------------------------------------------------------------


@dataclass
class Stack:
    """Loki, Tempo and Kubernetes stand-ins with payments in trouble, and a kubeconfig."""

    loki: FakeLoki
    tempo: FakeTempo
    kubernetes: FakeKubernetes
    kubeconfig: Path
    opened_at: datetime

    def settings(self, settings: Settings) -> Settings:
        return analysis_settings(
            settings,
            loki_url=self.loki.url,
            tempo_url=self.tempo.url,
            kubernetes_config=str(self.kubeconfig),
        )


@contextmanager
def stack_of(
    tmp_path: Path, *, deployments: tuple[str, ...] = ("checkout", "payments")
) -> Iterator[Stack]:
    """The stand-ins, holding payments' trouble from just after now (see `payments_logs`)."""
    opened_at = datetime.now(UTC)
    with FakeLoki() as loki, FakeTempo() as tempo, FakeKubernetes() as kubernetes:
        payments_logs(loki, opened_at)
        tempo.add(*checkout_traces(opened_at))
        kubernetes.add(*payments_cluster(opened_at, with_deployments=deployments))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kubernetes.url)
        yield Stack(loki, tempo, kubernetes, kubeconfig, opened_at)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with stack_of(tmp_path) as started:
        yield started


def analyse(
    settings: Settings,
    names: tuple[str, ...],
    linked: tuple[str, ...],
    telemetry: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Create `names` as services (with their `telemetry` bindings, if any) and an incident
    linked to `linked`, and wait for its analysis: the analysis, evidence and timeline
    (analysis events only)."""
    bindings = telemetry or {}
    with TestClient(create_app(settings)) as client:
        ids = {
            name: create_service(
                client, name=name, **({"telemetry": bindings[name]} if name in bindings else {})
            )["id"]
            for name in names
        }
        incident = create_incident(client, service_ids=[ids[name] for name in linked])
        analysis = wait_for_analysis(client, incident["id"])
        timeline = [e for e in timeline_of(client, incident["id"]) if e["actor"] == "analysis"]
        return {
            "incident": incident,
            "analysis": analysis,
            "evidence": evidence_of(client, incident["id"]),
            "timeline": timeline,
        }


# --- queueing and asking ---------------------------------------------------------------------


def test_creating_an_incident_queues_its_analysis(client: TestClient) -> None:
    created = client.post(
        "/api/incidents",
        json={"title": "Payment Service Down", "severity": "critical"},
        headers={"X-Actor": "jane"},
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    response = client.get(f"/api/incidents/{incident['id']}/analysis")
    assert response.status_code == 200, response.text
    analysis = response.json()
    assert analysis["incident_id"] == incident["id"]
    assert analysis["status"] == "pending"
    assert analysis["attempts"] == 0
    assert analysis["requested_by"] == "jane"
    assert analysis["hypotheses"] == []


def test_with_every_backend_down_the_analysis_finishes_without_hypotheses(
    settings: Settings,
) -> None:
    down = analysis_settings(settings)  # every URL refused, Kubernetes off
    with TestClient(create_app(down)) as client:
        service = create_service(client, name="payments")
        began = time.monotonic()
        incident = create_incident(client, service_ids=[service["id"]])  # asserts 201
        assert time.monotonic() - began < 2.0, "creating the incident waited on the backends"
        analysis = wait_for_analysis(client, incident["id"])
        evidence = evidence_of(client, incident["id"])
    assert analysis["status"] == "done", analysis
    assert analysis["error"] is None
    backends = analysis["backends"]
    assert sorted(backends) == ["kubernetes", "loki", "prometheus", "tempo"]
    for name in ("prometheus", "loki", "tempo"):
        assert backends[name].startswith("unavailable: "), backends
    assert backends["kubernetes"] == "not_configured"
    assert analysis["hypotheses"] == []
    assert evidence == []


def test_analyze_answers_202_with_a_new_pending_run(client: TestClient) -> None:
    incident = create_incident(client)
    first = client.get(f"/api/incidents/{incident['id']}/analysis").json()
    response = client.post(
        f"/api/incidents/{incident['id']}/analyze", headers={"X-Actor": "oncall"}
    )
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/incidents/{incident['id']}/analysis"
    run = response.json()
    assert run["run_id"] != first["run_id"]
    assert run["status"] == "pending"
    assert run["requested_by"] == "oncall"
    latest = client.get(f"/api/incidents/{incident['id']}/analysis").json()
    assert latest["run_id"] == run["run_id"]


def test_analyze_of_an_unknown_incident_is_a_404_problem(client: TestClient) -> None:
    response = client.post(f"/api/incidents/{uuid.uuid4()}/analyze")
    assert_problem(response, 404)


def test_the_analysis_of_an_unknown_incident_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get(f"/api/incidents/{uuid.uuid4()}/analysis"), 404)


def test_an_incident_without_any_run_has_no_analysis(
    client: TestClient, settings: Settings
) -> None:
    incident = create_incident(client)

    async def forget_runs(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with sessionmaker() as session:
            await session.execute(
                delete(AnalysisRun).where(AnalysisRun.incident_id == uuid.UUID(incident["id"]))
            )
            await session.commit()

    with_database(settings, forget_runs)
    problem = assert_problem(client.get(f"/api/incidents/{incident['id']}/analysis"), 404)
    assert "analysed" in problem["detail"]


# --- the queue across restarts ----------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[FakeKubernetes]:
    """The stand-in API server with payments in trouble (evidence that does not depend on
    when the incident was opened)."""
    with FakeKubernetes() as server:
        server.add(*payments_cluster(datetime.now(UTC)))
        yield server


@dataclass
class Queued:
    """An incident of payments (its run queued, no runner at work) and how to run a runner."""

    client: TestClient
    settings: Settings
    cluster: FakeKubernetes
    incident_id: str

    def with_runner(
        self, use: Callable[[AnalysisRunner, async_sessionmaker[AsyncSession]], Awaitable[T]]
    ) -> T:
        """`use(runner, sessionmaker)` with a runner of its own over the test's database, whose
        only backend is the stand-in Kubernetes, with a lease of `LEASE`."""

        async def main(sessionmaker: async_sessionmaker[AsyncSession]) -> T:
            kubernetes = KubernetesClient(
                KubernetesConfig(server=self.cluster.url, token=DEFAULT_TOKEN),
                timeout_seconds=3.0,
                attempts=1,
            )
            runner = AnalysisRunner(
                sessionmaker,
                Backends(kubernetes=kubernetes),
                AnalysisSettings(lease=LEASE, backend_timeout_seconds=3.0),
            )
            try:
                return await use(runner, sessionmaker)
            finally:
                await kubernetes.close()

        return with_database(self.settings, main)


@pytest.fixture
def queued(client: TestClient, settings: Settings, cluster: FakeKubernetes) -> Queued:
    service = create_service(client, name="payments")
    incident = create_incident(client, service_ids=[service["id"]])
    return Queued(client, settings, cluster, incident["id"])


def test_a_run_whose_worker_died_is_claimed_again_after_its_lease_and_finished_once(
    queued: Queued,
) -> None:
    async def crash_then_restart(
        runner: AnalysisRunner, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        now = utcnow()
        assert len(await runner._claim(now)) == 1  # and the worker dies: nothing completes it
        assert await runner.run_once(now + LEASE + timedelta(seconds=1)) == 1

    queued.with_runner(crash_then_restart)
    analysis = queued.client.get(f"/api/incidents/{queued.incident_id}/analysis").json()
    assert analysis["status"] == "done", analysis
    assert analysis["attempts"] == 2
    evidence = evidence_of(queued.client, queued.incident_id)
    assert len(evidence) == 2, evidence  # the BackOff warnings and the OOM-killed pod
    assert {item["run_id"] for item in evidence} == {analysis["run_id"]}
    assert len(timeline_of(queued.client, queued.incident_id, "k8s_event")) == 2


def test_a_run_is_not_claimed_again_while_its_lease_holds(queued: Queued) -> None:
    async def claim_twice(
        runner: AnalysisRunner, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> int:
        now = utcnow()
        await runner._claim(now)
        return await runner.run_once(now + LEASE - timedelta(seconds=1))

    assert queued.with_runner(claim_twice) == 0
    analysis = queued.client.get(f"/api/incidents/{queued.incident_id}/analysis").json()
    assert analysis["status"] == "running"
    assert analysis["attempts"] == 1


def test_a_worker_whose_lease_expired_cannot_store_a_second_copy(queued: Queued) -> None:
    async def late_worker(
        runner: AnalysisRunner, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        now = utcnow()
        [(run_id, slow_attempt)] = await runner._claim(now)  # a slow worker takes the run
        assert await runner.run_once(now + LEASE + timedelta(seconds=1)) == 1  # another finishes
        stored = await count_rows(sessionmaker, queued.incident_id)
        await runner._complete(run_id, slow_attempt)  # the slow worker is done at last
        return stored, await count_rows(sessionmaker, queued.incident_id)

    stored, after = queued.with_runner(late_worker)
    assert stored == (2, 2)
    assert after == stored
    analysis = queued.client.get(f"/api/incidents/{queued.incident_id}/analysis").json()
    assert analysis["status"] == "done"
    assert analysis["attempts"] == 2


def test_a_worker_whose_lease_expired_cannot_finish_a_run_taken_over(queued: Queued) -> None:
    async def overtaken(
        runner: AnalysisRunner, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> tuple[int, int]:
        now = utcnow()
        [(run_id, slow_attempt)] = await runner._claim(now)
        [(_, attempt)] = await runner._claim(now + LEASE + timedelta(seconds=1))  # taken over
        assert attempt == slow_attempt + 1
        await runner._complete(run_id, slow_attempt)  # the slow one finishes first: refused
        return await count_rows(sessionmaker, queued.incident_id)

    assert queued.with_runner(overtaken) == (0, 0)
    analysis = queued.client.get(f"/api/incidents/{queued.incident_id}/analysis").json()
    assert analysis["status"] == "running", "the run is still the second worker's"


def test_a_run_that_keeps_losing_its_worker_fails_after_three_attempts(queued: Queued) -> None:
    async def crash_every_time(
        runner: AnalysisRunner, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> list[AnalysisRun]:
        moment = utcnow()
        for _ in range(MAX_ATTEMPTS):
            assert len(await runner._claim(moment)) == 1
            moment += LEASE + timedelta(seconds=1)
        assert await runner._claim(moment) == []
        return await runs_of(sessionmaker, queued.incident_id)

    [run] = queued.with_runner(crash_every_time)
    assert run.status == "failed"
    assert run.attempts == MAX_ATTEMPTS
    assert run.error
    analysis = queued.client.get(f"/api/incidents/{queued.incident_id}/analysis").json()
    assert analysis["status"] == "failed"
    assert analysis["error"]


# --- logs, traces and Kubernetes ------------------------------------------------------------


def test_logs_traces_and_kubernetes_findings_are_evidence_and_on_the_timeline(
    settings: Settings, stack: Stack
) -> None:
    result = analyse(stack.settings(settings), ("checkout", "payments"), ("checkout", "payments"))
    by_kind: dict[str, set[tuple[str, str]]] = {}
    for item in result["evidence"]:
        by_kind.setdefault(item["kind"], set()).add((item["service"], item["source"]))
    assert ("payments", "loki") in by_kind.get("log_pattern", set()), result["evidence"]
    assert ("checkout", "tempo") in by_kind.get("trace_errors", set()), result["evidence"]
    assert ("payments", "kubernetes") in by_kind.get("k8s_event", set()), result["evidence"]
    events = {event["id"]: event for event in result["timeline"]}
    for item in result["evidence"]:
        event = events[item["timeline_event_id"]]
        assert (event["type"], event["source"]) == (item["kind"], item["source"])
        assert event["metadata"]["evidence_id"] == item["id"]
        assert event["metadata"]["query"] == item["query"]
    assert len(events) == len(result["evidence"])


def test_the_new_log_pattern_names_the_new_error(settings: Settings, stack: Stack) -> None:
    result = analyse(stack.settings(settings), ("payments",), ("payments",))
    patterns = [item for item in result["evidence"] if item["kind"] == "log_pattern"]
    assert len(patterns) == 1, patterns
    assert patterns[0]["figures"]["is_new"] is True
    assert "connection refused" in patterns[0]["figures"]["template"]
    assert patterns[0]["figures"]["incident_count"] == 20


def test_with_loki_tempo_and_kubernetes_up_each_reports_ok(
    settings: Settings, stack: Stack
) -> None:
    result = analyse(stack.settings(settings), ("checkout", "payments"), ("checkout", "payments"))
    backends = result["analysis"]["backends"]
    assert backends["loki"] == "ok", backends
    assert backends["tempo"] == "ok", backends
    assert backends["kubernetes"] == "ok", backends
    assert backends["prometheus"].startswith("unavailable: "), backends


def test_the_service_where_errors_originate_ranks_first(settings: Settings, stack: Stack) -> None:
    result = analyse(stack.settings(settings), ("checkout", "payments"), ("checkout", "payments"))
    hypotheses = result["analysis"]["hypotheses"]
    assert [h["service"] for h in hypotheses] == ["payments", "checkout"], hypotheses
    first, victim = hypotheses
    assert first["kind"] == "resource_exhaustion"  # OOM-killed and crash-looping
    assert "origin" in first["parts"]
    assert victim["parts"].get("victim", 0) < 0
    kinds = {item["id"]: item["kind"] for item in result["evidence"]}
    assert {kinds[i] for i in first["evidence_ids"]} >= {"log_pattern", "k8s_event"}


def test_a_service_blamed_by_its_callers_traces_is_analysed_too(
    settings: Settings, stack: Stack
) -> None:
    result = analyse(stack.settings(settings), ("checkout", "payments"), ("checkout",))
    hypotheses = result["analysis"]["hypotheses"]
    assert hypotheses, result["analysis"]
    assert hypotheses[0]["service"] == "payments", hypotheses
    services = {item["service"] for item in result["evidence"]}
    assert services == {"checkout", "payments"}


def test_a_workload_without_a_deployment_keeps_its_kubernetes_evidence(
    settings: Settings, tmp_path: Path
) -> None:
    # payments' pods are there and in trouble, but no Deployment is named payments (say it
    # is a StatefulSet, whose pods `belongs_to` knows): its events and pods are still evidence.
    with stack_of(tmp_path, deployments=()) as stack:
        result = analyse(stack.settings(settings), ("payments",), ("payments",))
        backends = result["analysis"]["backends"]
        kinds = {item["kind"] for item in result["evidence"]}
        assert "k8s_event" in kinds, (backends, result["evidence"])
        assert backends["kubernetes"] == "ok", backends


def test_a_backend_failing_for_a_service_reached_through_traces_is_reported(
    settings: Settings, stack: Stack
) -> None:
    # payments runs in its own namespace, whose events the studio may not read: the one hop
    # from checkout's traces to payments finds Kubernetes refusing, and the report says so.
    stack.kubernetes.forbid("events", "payments-ns")
    result = analyse(
        stack.settings(settings),
        ("checkout", "payments"),
        ("checkout",),
        telemetry={"payments": {"kubernetes": {"namespace": "payments-ns"}}},
    )
    services = {item["service"] for item in result["evidence"]}
    assert "payments" in services, "the hop did not happen"
    assert any("/namespaces/payments-ns/events" in path for path in stack.kubernetes.paths())
    backends = result["analysis"]["backends"]
    assert backends["kubernetes"].startswith("unavailable: "), backends

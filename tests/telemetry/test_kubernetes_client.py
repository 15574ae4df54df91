"""The Kubernetes client, as a specification, against a stand-in API server.

A Kubernetes API server cannot be installed here, so these are contract tests: the server
(`tests/support/fake_kubernetes.py`) answers as the documented Kubernetes REST API does
(core/v1 EventList and PodList, apps/v1 Deployment and ReplicaSetList, `Status` errors,
`limit`/`continue` pagination, label selectors, bearer tokens and client certificates).

What the callers rely on: warnings are read with their reason, object and times whichever
recorder wrote them; crash loops and OOM kills are recognised; rollouts list what changed;
and the errors say which kind of trouble it is (`...Unavailable` is retried then reported as
missing evidence, `...Forbidden` is a credentials/RBAC problem to fix, `...NotFound` a name).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from reliability_studio.telemetry import kubernetes
from reliability_studio.telemetry.kubernetes import (
    KubernetesClient,
    KubernetesConfig,
    KubernetesConfigError,
    KubernetesForbiddenError,
    KubernetesNotFoundError,
    KubernetesUnavailableError,
    load_config,
)
from tests.support.fake_kubernetes import (
    DEFAULT_TOKEN,
    DEFAULT_USER,
    FakeKubernetes,
    Terminated,
    TLSFiles,
    condition,
    container,
    deployment,
    event,
    pod,
    replica_set,
)
from tests.support.postgres import free_port

T = TypeVar("T")
NS = "shop"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def minutes_ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def run(
    config: KubernetesConfig, use: Callable[[KubernetesClient], Awaitable[T]], **options: Any
) -> T:
    """`use(client)` with a new client of `config`, in a new event loop."""

    async def main() -> T:
        client = KubernetesClient(config, **options)
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(main())


def config_for(server: FakeKubernetes, token: str | None = DEFAULT_TOKEN) -> KubernetesConfig:
    return KubernetesConfig(server=server.url, token=token)


# --- what the cluster holds -----------------------------------------------------------------

WEB_V1 = {"web": "registry.example/web:1.4.0", "envoy": "envoyproxy/envoy:v1.29.1"}
WEB_V2 = {"web": "registry.example/web:1.5.0", "envoy": "envoyproxy/envoy:v1.29.1"}
WEB_V3 = {"web": "registry.example/web:1.5.1", "envoy": "envoyproxy/envoy:v1.30.0"}

BACKOFF = event(
    NS, "Pod", "web-7d4b9c6f5-x2kqp", "BackOff",
    "Back-off restarting failed container web in pod web-7d4b9c6f5-x2kqp_shop(5c1f...)",
    first=minutes_ago(120), last=minutes_ago(2), count=31,
)  # fmt: skip
OOM_KILLING = event(
    NS, "Node", "node-1", "OOMKilling",
    "Memory cgroup out of memory: Killed process 4242 (web) total-vm:1048576kB",
    first=minutes_ago(9), last=minutes_ago(9), component="kernel-monitor",
)  # fmt: skip
FAILED_SCHEDULING = event(
    NS, "Pod", "worker-5f6d8b7c9-q8z2m", "FailedScheduling",
    "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod.",
    event_time=minutes_ago(30) + timedelta(microseconds=123456), component="default-scheduler",
    series=(14, minutes_ago(1) + timedelta(microseconds=654321)),
)  # fmt: skip
UNHEALTHY = event(
    NS, "Pod", "web-7d4b9c6f5-x2kqp", "Unhealthy",
    "Liveness probe failed: HTTP probe failed with statuscode: 500",
    first=minutes_ago(20), last=minutes_ago(3), count=12,
)  # fmt: skip
EVICTED = event(
    NS, "Pod", "batch-6c8f7d9b4-m4n5p", "Evicted",
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91844Ki.",
    first=minutes_ago(45), last=minutes_ago(45),
)  # fmt: skip
SCHEDULED = event(
    NS, "Pod", "worker-5f6d8b7c9-abcde", "Scheduled",
    "Successfully assigned shop/worker-5f6d8b7c9-abcde to node-2",
    type_="Normal", event_time=minutes_ago(50) + timedelta(microseconds=5),
    component="default-scheduler",
)  # fmt: skip
PULLED = event(
    NS, "Pod", "web-7d4b9c6f5-x2kqp", "Pulled",
    'Container image "registry.example/web:1.5.1" already present on machine',
    type_="Normal", first=minutes_ago(118), last=minutes_ago(118),
)  # fmt: skip
EVENTS = [BACKOFF, OOM_KILLING, FAILED_SCHEDULING, UNHEALTHY, EVICTED, SCHEDULED, PULLED]

CRASHING = pod(
    NS, "web-7d4b9c6f5-x2kqp", labels={"app": "web", "pod-template-hash": "7d4b9c6f5"},
    containers=[
        container(
            "web", WEB_V3["web"], ready=False, restarts=7,
            waiting=("CrashLoopBackOff", "back-off 5m0s restarting failed container=web "
                     "pod=web-7d4b9c6f5-x2kqp_shop(5c1f)"),
            last_terminated=Terminated("Error", 1, minutes_ago(4), minutes_ago(3)),
        ),
        container("envoy", WEB_V3["envoy"]),
    ],
)  # fmt: skip
OOM_RESTARTED = pod(
    NS, "web-7d4b9c6f5-7hjkl", labels={"app": "web", "pod-template-hash": "7d4b9c6f5"},
    containers=[
        container(
            "web", WEB_V3["web"], restarts=2, running_since=minutes_ago(8),
            last_terminated=Terminated("OOMKilled", 137, minutes_ago(60), minutes_ago(9)),
        ),
        container("envoy", WEB_V3["envoy"]),
    ],
)  # fmt: skip
HEALTHY = pod(
    NS, "web-7d4b9c6f5-b2c3d", labels={"app": "web", "pod-template-hash": "7d4b9c6f5"},
    containers=[container("web", WEB_V3["web"]), container("envoy", WEB_V3["envoy"])],
)  # fmt: skip
WORKER = pod(
    NS, "worker-5f6d8b7c9-abcde", labels={"app": "worker"},
    containers=[container("worker", "registry.example/worker:2.0.0")],
)  # fmt: skip
EVICTED_POD = pod(
    NS, "batch-6c8f7d9b4-m4n5p", labels={"app": "batch"}, phase="Failed", reason="Evicted",
    message="The node was low on resource: memory.",
    containers=[container("batch", "registry.example/batch:0.9", ready=False)],
)  # fmt: skip

WEB = deployment(
    NS, "web", images=WEB_V3, revision=3, created=minutes_ago(60 * 24 * 7),
    generation=5, observed_generation=5, ready=2,
    conditions=[
        condition("Available", "True", "MinimumReplicasAvailable",
                  "Deployment has minimum availability.", minutes_ago(600), minutes_ago(600)),
        condition("Progressing", "True", "NewReplicaSetAvailable",
                  'ReplicaSet "web-7d4b9c6f5" has successfully progressed.',
                  minutes_ago(25), minutes_ago(60 * 24 * 7)),
    ],
)  # fmt: skip
WEB_RS = [
    replica_set(WEB, images=WEB_V1, revision=1, created=minutes_ago(60 * 24 * 7)),
    replica_set(WEB, images=WEB_V2, revision=2, created=minutes_ago(60 * 24)),
    replica_set(WEB, images=WEB_V3, revision=3, created=minutes_ago(30), replicas=3,
                change_cause="kubectl set image deployment/web web=registry.example/web:1.5.1"),
]  # fmt: skip
# A canary Deployment whose pods (and ReplicaSet) are also `app=web`: not web's history.
OTHER_OWNER = deployment(NS, "web-canary", images=WEB_V2, revision=1, created=minutes_ago(90))
OTHER_OWNER["spec"]["selector"]["matchLabels"] = {"app": "web", "track": "canary"}
OTHER_OWNER["spec"]["template"]["metadata"]["labels"] = {"app": "web", "track": "canary"}
STRAY_RS = replica_set(OTHER_OWNER, images={"web": "registry.example/web:canary"}, revision=9,
                       created=minutes_ago(5))  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[FakeKubernetes]:
    """One namespace with the events, pods and the `web` Deployment above."""
    with FakeKubernetes() as server:
        server.add(*EVENTS, CRASHING, OOM_RESTARTED, HEALTHY, WORKER, EVICTED_POD)
        server.add(WEB, *WEB_RS, OTHER_OWNER, STRAY_RS)
        yield server


@pytest.fixture
def fresh() -> Iterator[FakeKubernetes]:
    """An empty server of the test's own (for faults, counts and RBAC)."""
    with FakeKubernetes(hang_seconds=1.0) as server:
        yield server


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles.create(tmp_path_factory.mktemp("k8s-tls"), client_user="jane")


@pytest.fixture
def tls_cluster(tls: TLSFiles) -> Iterator[FakeKubernetes]:
    with FakeKubernetes(tls=tls) as server:
        server.add(HEALTHY)
        yield server


# --- events ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "kind", "name", "count"),
    [
        ("BackOff", "Pod", "web-7d4b9c6f5-x2kqp", 31),
        ("OOMKilling", "Node", "node-1", 1),
        ("FailedScheduling", "Pod", "worker-5f6d8b7c9-q8z2m", 14),
        ("Unhealthy", "Pod", "web-7d4b9c6f5-x2kqp", 12),
        ("Evicted", "Pod", "batch-6c8f7d9b4-m4n5p", 1),
    ],
)
def test_warning_events_are_read_with_reason_object_and_count(
    cluster: FakeKubernetes, reason: str, kind: str, name: str, count: int
) -> None:
    events = run(config_for(cluster), lambda c: c.events(NS))
    (found,) = [e for e in events if e.reason == reason]
    assert found.warning
    assert (found.involved_kind, found.involved_name, found.count) == (kind, name, count)
    assert found.namespace == NS
    assert found.message


def test_an_event_keeps_its_first_and_last_timestamps(cluster: FakeKubernetes) -> None:
    events = run(config_for(cluster), lambda c: c.events(NS))
    (backoff,) = [e for e in events if e.reason == "BackOff"]
    assert (backoff.first_seen, backoff.last_seen) == (minutes_ago(120), minutes_ago(2))
    assert backoff.source == "kubelet"


def test_an_event_with_null_timestamps_takes_its_time_from_event_time(
    cluster: FakeKubernetes,
) -> None:
    """Events of the events.k8s.io recorder have null first/lastTimestamp and no count."""
    events = run(config_for(cluster), lambda c: c.events(NS))
    (scheduled,) = [e for e in events if e.reason == "Scheduled"]
    at = minutes_ago(50) + timedelta(microseconds=5)
    assert (scheduled.first_seen, scheduled.last_seen, scheduled.count) == (at, at, 1)
    assert not scheduled.warning
    assert scheduled.source == "default-scheduler"


def test_a_repeated_event_takes_last_seen_and_count_from_its_series(
    cluster: FakeKubernetes,
) -> None:
    events = run(config_for(cluster), lambda c: c.events(NS))
    (failed,) = [e for e in events if e.reason == "FailedScheduling"]
    assert failed.first_seen == minutes_ago(30) + timedelta(microseconds=123456)
    assert failed.last_seen == minutes_ago(1) + timedelta(microseconds=654321)
    assert failed.count == 14


def test_events_come_oldest_last_seen_first(cluster: FakeKubernetes) -> None:
    events = run(config_for(cluster), lambda c: c.events(NS))
    assert len(events) == len(EVENTS)
    seen = [e.last_seen for e in events]
    assert seen == sorted(s for s in seen if s is not None)


def test_since_keeps_events_last_seen_at_or_after_it(cluster: FakeKubernetes) -> None:
    """BackOff began two hours ago but was seen again two minutes ago: it is kept."""
    events = run(config_for(cluster), lambda c: c.events(NS, since=minutes_ago(9)))
    assert [e.reason for e in events] == ["OOMKilling", "Unhealthy", "BackOff", "FailedScheduling"]


def test_since_may_be_naive_utc(cluster: FakeKubernetes) -> None:
    since = minutes_ago(3).replace(tzinfo=None)
    events = run(config_for(cluster), lambda c: c.events(NS, since=since))
    assert [e.reason for e in events] == ["Unhealthy", "BackOff", "FailedScheduling"]


def test_involved_name_prefix_keeps_events_about_those_objects(cluster: FakeKubernetes) -> None:
    events = run(config_for(cluster), lambda c: c.events(NS, involved_name_prefix="web-"))
    assert {e.reason for e in events} == {"BackOff", "Unhealthy", "Pulled"}


def test_a_namespace_without_events_has_none(cluster: FakeKubernetes) -> None:
    assert run(config_for(cluster), lambda c: c.events("empty")) == []


def test_events_are_read_page_by_page_following_continue(fresh: FakeKubernetes) -> None:
    fresh.add(*EVENTS)
    events = run(config_for(fresh), lambda c: c.events(NS), page_size=3)
    assert sorted(e.name for e in events) == sorted(e["metadata"]["name"] for e in EVENTS)
    pages = [r.query for r in fresh.requests]
    assert len(pages) == 3  # 3 + 3 + 1
    assert all(page["limit"] == "3" for page in pages)
    assert "continue" not in pages[0]
    assert pages[1]["continue"]
    assert pages[2]["continue"] != pages[1]["continue"]


# --- pods -----------------------------------------------------------------------------------


def test_a_container_in_crash_loop_back_off_makes_its_pod_crash_looping(
    cluster: FakeKubernetes,
) -> None:
    pods = {p.name: p for p in run(config_for(cluster), lambda c: c.pods(NS))}
    crashing = pods["web-7d4b9c6f5-x2kqp"]
    assert crashing.crash_looping
    assert not crashing.oom_killed
    web = crashing.containers[0]
    assert (web.name, web.ready, web.restart_count, web.waiting_reason) == (
        "web", False, 7, "CrashLoopBackOff"
    )  # fmt: skip
    assert web.last_terminated is not None
    assert (web.last_terminated.reason, web.last_terminated.exit_code) == ("Error", 1)
    assert crashing.restarts == 7


def test_a_container_last_killed_for_memory_shows_oom_killed_exit_137(
    cluster: FakeKubernetes,
) -> None:
    pods = {p.name: p for p in run(config_for(cluster), lambda c: c.pods(NS))}
    restarted = pods["web-7d4b9c6f5-7hjkl"]
    assert restarted.oom_killed
    assert not restarted.crash_looping  # running again
    last = restarted.containers[0].last_terminated
    assert last is not None
    assert (last.reason, last.exit_code, last.finished_at) == ("OOMKilled", 137, minutes_ago(9))


def test_a_healthy_pod_is_neither_crash_looping_nor_oom_killed(cluster: FakeKubernetes) -> None:
    pods = {p.name: p for p in run(config_for(cluster), lambda c: c.pods(NS))}
    healthy = pods["web-7d4b9c6f5-b2c3d"]
    assert healthy.phase == "Running"
    assert not healthy.crash_looping
    assert not healthy.oom_killed
    assert not healthy.evicted
    assert all(c.ready and c.last_terminated is None for c in healthy.containers)


def test_an_evicted_pod_is_failed_with_reason_evicted(cluster: FakeKubernetes) -> None:
    pods = {p.name: p for p in run(config_for(cluster), lambda c: c.pods(NS))}
    assert pods["batch-6c8f7d9b4-m4n5p"].evicted


def test_pods_are_chosen_by_label_selector(cluster: FakeKubernetes) -> None:
    pods = run(config_for(cluster), lambda c: c.pods(NS, label_selector="app=web"))
    assert sorted(p.name for p in pods) == [
        "web-7d4b9c6f5-7hjkl", "web-7d4b9c6f5-b2c3d", "web-7d4b9c6f5-x2kqp"
    ]  # fmt: skip
    assert cluster.requests[-1].query["labelSelector"] == "app=web"


# --- deployments and rollouts ---------------------------------------------------------------


def test_a_deployment_is_read_with_revision_generation_images_and_conditions(
    cluster: FakeKubernetes,
) -> None:
    web = run(config_for(cluster), lambda c: c.deployment(NS, "web"))
    assert (web.revision, web.generation, web.observed_generation) == (3, 5, 5)
    assert web.observed
    assert web.images == WEB_V3
    assert web.selector == "app=web"
    assert (web.replicas, web.ready_replicas) == (3, 2)
    progressing = web.condition("Progressing")
    assert progressing is not None
    assert (progressing.reason, progressing.last_update_time) == (
        "NewReplicaSetAvailable", minutes_ago(25)
    )  # fmt: skip
    assert progressing.last_transition_time == minutes_ago(60 * 24 * 7)
    assert not web.progress_deadline_exceeded


def test_replica_sets_come_by_revision_with_their_images(cluster: FakeKubernetes) -> None:
    sets = run(config_for(cluster), lambda c: c.replica_sets(NS, "app=web"))
    web_sets = [rs for rs in sets if rs.owner_name == "web"]
    assert [(rs.revision, rs.images) for rs in web_sets] == [(1, WEB_V1), (2, WEB_V2), (3, WEB_V3)]
    assert web_sets[-1].created == minutes_ago(30)
    assert web_sets[-1].owner_kind == "Deployment"


def test_rollouts_list_each_revision_with_the_images_it_changed(cluster: FakeKubernetes) -> None:
    rollouts = run(config_for(cluster), lambda c: c.rollouts(NS, "web"))
    assert [r.revision for r in rollouts] == [1, 2, 3]  # not the canary's ReplicaSet
    first, second, third = rollouts
    assert first.previous_images is None
    assert second.changed_images == {"web": (WEB_V1["web"], WEB_V2["web"])}
    assert third.changed_images == {
        "envoy": (WEB_V2["envoy"], WEB_V3["envoy"]),
        "web": (WEB_V2["web"], WEB_V3["web"]),
    }
    assert third.time == minutes_ago(30)
    assert third.change_cause == "kubectl set image deployment/web web=registry.example/web:1.5.1"


def test_rollouts_since_keeps_the_recent_ones(cluster: FakeKubernetes) -> None:
    rollouts = run(config_for(cluster), lambda c: c.rollouts(NS, "web", minutes_ago(60)))
    assert [(r.revision, r.replica_set, r.previous_images) for r in rollouts] == [
        (3, WEB_RS[2]["metadata"]["name"], WEB_V2)
    ]


def test_a_rollback_is_a_new_revision_that_changes_the_images_back(fresh: FakeKubernetes) -> None:
    """`kubectl rollout undo` reuses the old ReplicaSet: its revision becomes the newest, its
    `revision-history` keeps the old number, and its creation time is the old one."""
    web = deployment(
        NS, "web", images=WEB_V1, revision=3, created=minutes_ago(600), generation=3,
        conditions=[condition("Progressing", "True", "NewReplicaSetAvailable", "done",
                              minutes_ago(4), minutes_ago(600))],
    )  # fmt: skip
    fresh.add(
        web,
        replica_set(web, images=WEB_V1, revision=3, revision_history=[1], created=minutes_ago(600)),
        replica_set(web, images=WEB_V2, revision=2, created=minutes_ago(20)),
    )
    rollouts = run(config_for(fresh), lambda c: c.rollouts(NS, "web", minutes_ago(15)))
    (rollback,) = rollouts
    assert (rollback.revision, rollback.rollback, rollback.time) == (3, True, minutes_ago(4))
    assert rollback.changed_images == {"web": (WEB_V2["web"], WEB_V1["web"])}


def test_a_missing_deployment_is_not_found_with_the_status_message(
    cluster: FakeKubernetes,
) -> None:
    with pytest.raises(KubernetesNotFoundError, match=r'deployments.apps "api" not found') as info:
        run(config_for(cluster), lambda c: c.deployment(NS, "api"))
    assert info.value.code == 404
    assert info.value.reason == "NotFound"
    assert info.value.status is not None
    assert info.value.status["details"] == {"name": "api", "group": "apps", "kind": "deployments"}


# --- credentials and RBAC -------------------------------------------------------------------


def test_the_bearer_token_is_sent(fresh: FakeKubernetes) -> None:
    run(config_for(fresh), lambda c: c.events(NS))
    (request,) = fresh.requests
    assert request.headers["Authorization"] == f"Bearer {DEFAULT_TOKEN}"
    assert request.user == DEFAULT_USER


def test_a_wrong_token_is_forbidden_401_and_not_retried(fresh: FakeKubernetes) -> None:
    with pytest.raises(KubernetesForbiddenError, match="Unauthorized") as info:
        run(config_for(fresh, token="expired"), lambda c: c.pods(NS), attempts=3)
    assert info.value.code == 401
    assert len(fresh.requests) == 1


def test_an_rbac_denial_is_forbidden_403_with_the_status_message(fresh: FakeKubernetes) -> None:
    fresh.forbid("events", NS)
    with pytest.raises(KubernetesForbiddenError) as info:
        run(config_for(fresh), lambda c: c.events(NS))
    assert str(info.value).endswith(
        f'events is forbidden: User "{DEFAULT_USER}" cannot list resource "events" '
        f'in API group "" in the namespace "{NS}"'
    )
    assert (info.value.code, info.value.reason) == (403, "Forbidden")


def test_no_credentials_is_the_anonymous_user_and_forbidden(fresh: FakeKubernetes) -> None:
    with pytest.raises(KubernetesForbiddenError, match='User "system:anonymous" cannot get'):
        run(config_for(fresh, token=None), lambda c: c.deployment(NS, "web"))


def test_a_rotated_token_file_is_read_again(
    fresh: FakeKubernetes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Projected service account tokens rotate: the file is re-read (here at every request)."""
    monkeypatch.setattr(kubernetes, "TOKEN_REREAD_SECONDS", 0.0)
    token_file = tmp_path / "token"
    token_file.write_text("old-token\n")
    config = KubernetesConfig(server=fresh.url, token="old-token", token_file=token_file)

    async def twice(client: KubernetesClient) -> None:
        with pytest.raises(KubernetesForbiddenError):
            await client.pods(NS)
        token_file.write_text(DEFAULT_TOKEN + "\n")
        await client.pods(NS)

    run(config, twice)
    assert [r.user for r in fresh.requests] == [None, DEFAULT_USER]


# --- failures -------------------------------------------------------------------------------


def test_server_errors_are_retried_then_succeed(fresh: FakeKubernetes) -> None:
    fresh.add(HEALTHY)
    fresh.fail("500", times=2)
    pods = run(config_for(fresh), lambda c: c.pods(NS), attempts=3)
    assert [p.name for p in pods] == ["web-7d4b9c6f5-b2c3d"]
    assert len(fresh.requests) == 3


def test_throttling_is_retried_after_retry_after(fresh: FakeKubernetes) -> None:
    fresh.fail("429", retry_after=1)
    started = time.monotonic()
    assert run(config_for(fresh), lambda c: c.events(NS), attempts=2) == []
    assert time.monotonic() - started >= 1.0
    assert len(fresh.requests) == 2


def test_lasting_server_errors_are_unavailable_with_the_status_message(
    fresh: FakeKubernetes,
) -> None:
    fresh.fail("500", times=3)
    with pytest.raises(KubernetesUnavailableError, match="etcdserver: request timed out") as info:
        run(config_for(fresh), lambda c: c.events(NS), attempts=3)
    assert (info.value.code, info.value.reason) == (500, "InternalError")
    assert len(fresh.requests) == 3


def test_a_closed_port_is_unavailable_after_the_retries() -> None:
    config = KubernetesConfig(server=f"http://127.0.0.1:{free_port()}", token="t")
    started = time.monotonic()
    with pytest.raises(KubernetesUnavailableError, match="ConnectError"):
        run(config, lambda c: c.events(NS), attempts=3)
    assert time.monotonic() - started >= 0.6  # two backoff waits (0.2 s, 0.4 s, plus jitter)


def test_a_server_that_never_answers_times_out(fresh: FakeKubernetes) -> None:
    fresh.fail("hang")
    started = time.monotonic()
    with pytest.raises(KubernetesUnavailableError, match="ReadTimeout"):
        run(config_for(fresh), lambda c: c.pods(NS), attempts=1, timeout_seconds=0.3)
    assert time.monotonic() - started < 1.0


# --- kubeconfig -----------------------------------------------------------------------------


def write_kubeconfig(
    path: Path, user: dict[str, Any], cluster: dict[str, Any], **extra: Any
) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "prod", "cluster": cluster}],
        "users": [{"name": "reliability", "user": user}],
        "contexts": [
            {"name": "prod", "context": {"cluster": "prod", "user": "reliability", "namespace": NS}}
        ],
        "current-context": "prod",
        "preferences": {},
        **extra,
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_a_kubeconfig_token_user(tmp_path: Path, fresh: FakeKubernetes) -> None:
    path = write_kubeconfig(tmp_path / "config", {"token": DEFAULT_TOKEN}, {"server": fresh.url})
    config = KubernetesConfig.from_kubeconfig(path)
    assert (config.server, config.token, config.namespace_default) == (fresh.url, DEFAULT_TOKEN, NS)
    run(config, lambda c: c.pods(NS))
    assert fresh.requests[0].user == DEFAULT_USER


def test_kubeconfig_ca_and_client_certificate_data_reach_a_tls_server(
    tmp_path: Path, tls: TLSFiles, tls_cluster: FakeKubernetes
) -> None:
    """The CA data verifies the server; the client certificate data authenticates as its CN."""
    path = write_kubeconfig(
        tmp_path / "config",
        {"client-certificate-data": b64(tls.client_cert), "client-key-data": b64(tls.client_key)},
        {"server": tls_cluster.url, "certificate-authority-data": b64(tls.ca)},
    )
    config = KubernetesConfig.from_kubeconfig(path)
    assert config.ca_data == tls.ca.read_bytes()
    assert config.token is None
    pods = run(config, lambda c: c.pods(NS))
    assert [p.name for p in pods] == ["web-7d4b9c6f5-b2c3d"]
    assert tls_cluster.requests[0].user == "jane"


def test_kubeconfig_certificate_files_are_relative_to_the_kubeconfig(
    tmp_path: Path, tls: TLSFiles, tls_cluster: FakeKubernetes
) -> None:
    home = tmp_path / "kube"
    home.mkdir()
    for source in (tls.ca, tls.client_cert, tls.client_key):
        (home / source.name).write_bytes(source.read_bytes())
    path = write_kubeconfig(
        home / "config",
        {"client-certificate": "client.crt", "client-key": "client.key"},
        {"server": tls_cluster.url, "certificate-authority": "ca.crt"},
    )
    config = KubernetesConfig.from_kubeconfig(path)
    assert config.ca_file == home / "ca.crt"
    run(config, lambda c: c.pods(NS))
    assert tls_cluster.requests[0].user == "jane"


def test_a_tls_server_is_not_trusted_without_its_ca(
    tmp_path: Path, tls_cluster: FakeKubernetes
) -> None:
    path = write_kubeconfig(tmp_path / "config", {"token": "t"}, {"server": tls_cluster.url})
    with pytest.raises(KubernetesUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        run(KubernetesConfig.from_kubeconfig(path), lambda c: c.pods(NS), attempts=1)


def test_insecure_skip_tls_verify_trusts_any_server(
    tmp_path: Path, tls_cluster: FakeKubernetes
) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        {"token": DEFAULT_TOKEN},
        {"server": tls_cluster.url, "insecure-skip-tls-verify": True},
    )
    pods = run(KubernetesConfig.from_kubeconfig(path), lambda c: c.pods(NS))
    assert len(pods) == 1


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws",
                      "args": ["eks", "get-token", "--cluster-name", "prod"]}},
            r"exec plugin \(aws\)",
        ),
        ({"auth-provider": {"name": "oidc", "config": {"idp-issuer-url": "https://id"}}},
         r"auth-provider plugin \(oidc\)"),
    ],
)  # fmt: skip
def test_credential_plugins_are_refused(tmp_path: Path, user: dict[str, Any], message: str) -> None:
    path = write_kubeconfig(tmp_path / "config", user, {"server": "https://k8s.example:6443"})
    with pytest.raises(KubernetesConfigError, match=message):
        KubernetesConfig.from_kubeconfig(path)


def test_a_kubeconfig_without_current_context_is_an_error(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", {"token": "t"}, {"server": "https://k:6443"})
    document = yaml.safe_load(path.read_text())
    del document["current-context"]
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(KubernetesConfigError, match="has no current-context"):
        KubernetesConfig.from_kubeconfig(path)


def test_a_current_context_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        {"token": "t"},
        {"server": "https://k:6443"},
        **{"current-context": "dev"},
    )
    with pytest.raises(KubernetesConfigError, match="no context named 'dev'"):
        KubernetesConfig.from_kubeconfig(path)


def test_a_certificate_without_its_key_is_an_error(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config", {"client-certificate-data": "Zm9v"}, {"server": "https://k:6443"}
    )
    with pytest.raises(KubernetesConfigError, match="both a client certificate and its key"):
        KubernetesConfig.from_kubeconfig(path)


def test_secrets_stay_out_of_the_config_repr(tmp_path: Path) -> None:
    config = KubernetesConfig(server="https://k:6443", token="s3cret", client_key_data=b"KEY")
    assert "s3cret" not in repr(config)
    assert "KEY" not in repr(config)


# --- in-cluster -----------------------------------------------------------------------------


def service_account(root: Path, ca: bytes, token: str = DEFAULT_TOKEN, namespace: str = NS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "token").write_text(token)
    (root / "ca.crt").write_bytes(ca)
    (root / "namespace").write_text(namespace)
    return root


def test_in_cluster_config_reads_the_service_account_and_env(tmp_path: Path) -> None:
    root = service_account(tmp_path / "sa", b"-----BEGIN CERTIFICATE-----\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = KubernetesConfig.from_in_cluster(env, root)
    assert config.server == "https://10.96.0.1:443"
    assert (config.token, config.ca_file, config.namespace_default) == (
        DEFAULT_TOKEN, root / "ca.crt", NS
    )  # fmt: skip
    assert config.token_file == root / "token"


def test_in_cluster_ipv6_service_host_is_bracketed(tmp_path: Path) -> None:
    root = service_account(tmp_path / "sa", b"ca")
    env = {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"}
    assert KubernetesConfig.from_in_cluster(env, root).server == "https://[fd00:10:96::1]:443"


def test_in_cluster_config_talks_tls_with_the_service_account(
    tmp_path: Path, tls: TLSFiles, tls_cluster: FakeKubernetes
) -> None:
    root = service_account(tmp_path / "sa", tls.ca.read_bytes())
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(tls_cluster.port)}
    pods = run(KubernetesConfig.from_in_cluster(env, root), lambda c: c.pods(NS))
    assert len(pods) == 1
    assert tls_cluster.requests[0].user == DEFAULT_USER


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "not in a Kubernetes pod"),
        ({"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": "443"}, "set but empty"),
    ],
)
def test_in_cluster_needs_the_service_env(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    root = service_account(tmp_path / "sa", b"ca")
    with pytest.raises(KubernetesConfigError, match=message):
        KubernetesConfig.from_in_cluster(env, root)


def test_in_cluster_needs_a_token(tmp_path: Path) -> None:
    root = service_account(tmp_path / "sa", b"ca", token="")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(KubernetesConfigError, match=r"service account token .* is empty"):
        KubernetesConfig.from_in_cluster(env, root)


# --- which configuration ---------------------------------------------------------------------

IN_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_load_config_prefers_an_explicit_kubeconfig(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config", {"token": "t"}, {"server": "https://explicit:6443"}
    )
    root = service_account(tmp_path / "sa", b"ca")
    config = load_config(str(path), env=IN_POD, in_cluster_root=root)
    assert config.server == "https://explicit:6443"


def test_load_config_uses_the_service_account_in_a_pod(tmp_path: Path) -> None:
    root = service_account(tmp_path / "sa", b"ca")
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    write_kubeconfig(home / ".kube" / "config", {"token": "t"}, {"server": "https://home:6443"})
    config = load_config(env=IN_POD, in_cluster_root=root, home=home)
    assert config.server == "https://10.96.0.1:443"


def test_load_config_merges_kubeconfig_files_first_one_wins(tmp_path: Path) -> None:
    first = write_kubeconfig(tmp_path / "a", {"token": "a"}, {"server": "https://a:6443"})
    second = write_kubeconfig(
        tmp_path / "b", {"token": "b"}, {"server": "https://b:6443"}, **{"current-context": "x"}
    )
    env = {"KUBECONFIG": os.pathsep.join(str(p) for p in (tmp_path / "missing", first, second))}
    config = load_config(env=env, in_cluster_root=tmp_path / "none", home=tmp_path)
    assert (config.server, config.token) == ("https://a:6443", "a")


def test_load_config_falls_back_to_the_home_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    write_kubeconfig(tmp_path / ".kube" / "config", {"token": "t"}, {"server": "https://home:6443"})
    config = load_config(env={}, in_cluster_root=tmp_path / "none", home=tmp_path)
    assert config.server == "https://home:6443"


def test_load_config_without_any_configuration_says_what_it_tried(tmp_path: Path) -> None:
    with pytest.raises(
        KubernetesConfigError, match=r"no Kubernetes configuration found.*in-cluster"
    ):
        load_config(env=IN_POD, in_cluster_root=tmp_path / "none", home=tmp_path)

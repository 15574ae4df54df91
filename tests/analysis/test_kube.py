"""Kubernetes as evidence: warning events per reason, pods in trouble and rollouts, as the
`k8s_event` and `deploy` findings that the timeline shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from reliability_studio.analysis.findings import (
    CONFIG,
    CRASHLOOP,
    ERROR_SURGE,
    LATENCY,
    OOM,
    ROLLOUT,
    SCHEDULING,
    Finding,
)
from reliability_studio.analysis.kube import belongs_to, kube_findings
from reliability_studio.telemetry.kubernetes import (
    ContainerStatus,
    K8sEvent,
    PodStatus,
    Rollout,
    Termination,
)

SINCE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
POD = "checkout-7d9f8b6c4d-x2k9q"


def event(
    reason: str,
    message: str = "Back-off restarting failed container app in pod",
    *,
    involved: str = POD,
    kind: str = "Pod",
    count: int = 1,
    at: int = 5,
    type_: str = "Warning",
) -> K8sEvent:
    seen = SINCE + timedelta(minutes=at)
    return K8sEvent(
        namespace="shop",
        name=f"{involved}.{reason}.{at}",
        type=type_,
        reason=reason,
        message=message,
        involved_kind=kind,
        involved_name=involved,
        involved_namespace="shop",
        count=count,
        first_seen=seen,
        last_seen=seen,
        source="kubelet",
    )


def container(
    *,
    waiting: str | None = None,
    last: Termination | None = None,
    restarts: int = 0,
) -> ContainerStatus:
    return ContainerStatus(
        name="app",
        ready=waiting is None,
        restart_count=restarts,
        image="app:1.5.0",
        waiting_reason=waiting,
        waiting_message=None,
        terminated=None,
        last_terminated=last,
    )


def pod(name: str = POD, *containers: ContainerStatus, phase: str = "Running") -> PodStatus:
    return PodStatus(
        namespace="shop",
        name=name,
        phase=phase,
        reason=None,
        message=None,
        node_name="node-1",
        labels={"app": "checkout"},
        start_time=SINCE - timedelta(hours=1),
        containers=containers,
    )


def rollout(revision: int = 12, *, at: datetime | None = None, rollback: bool = False) -> Rollout:
    return Rollout(
        deployment="checkout",
        revision=revision,
        replica_set=f"checkout-{revision}",
        images={"app": "app:1.5.0"},
        previous_images={"app": "app:1.4.2"},
        time=at if at is not None else SINCE + timedelta(minutes=1),
        rollback=rollback,
        change_cause=None,
    )


def findings(
    *,
    events: Sequence[K8sEvent] = (),
    pods: Sequence[PodStatus] = (),
    rollouts: Sequence[Rollout] = (),
    incident_start: datetime | None = None,
) -> list[Finding]:
    return kube_findings(
        "checkout",
        "shop",
        "checkout",
        events=events,
        pods=pods,
        rollouts=rollouts,
        since=SINCE,
        incident_start=incident_start,
    )


def test_watched_warning_events_are_aggregated_per_reason_with_counts() -> None:
    other_pod = "checkout-7d9f8b6c4d-b7pzt"
    [finding] = findings(
        events=[
            event("BackOff", count=10, at=2),
            event("BackOff", count=5, at=9, involved=other_pod),
        ]
    )

    assert (finding.kind, finding.source) == ("k8s_event", "kubernetes")
    assert finding.figures["count"] == 15
    assert finding.figures["objects"] == [POD, other_pod]
    assert finding.figures["first_seen"] == (SINCE + timedelta(minutes=2)).isoformat()
    assert finding.figures["last_seen"] == (SINCE + timedelta(minutes=9)).isoformat()
    assert finding.started_at == SINCE + timedelta(minutes=2)
    assert finding.title.startswith("15 BackOff warnings for checkout (2 objects")
    assert finding.signals == {CRASHLOOP}
    assert finding.query == (
        "kubectl -n shop get events --field-selector type=Warning,reason=BackOff | grep checkout"
    )


def test_an_event_about_one_pod_gives_a_query_for_that_pod() -> None:
    [finding] = findings(events=[event("OOMKilling", "Killed process 42 (java)")])

    assert finding.signals == {OOM}
    assert finding.component == POD
    assert finding.query == (
        "kubectl -n shop get events --field-selector "
        f"type=Warning,reason=OOMKilling,involvedObject.name={POD}"
    )


def test_more_events_score_higher() -> None:
    [one] = findings(events=[event("FailedScheduling", "0/3 nodes are available")])
    [many] = findings(events=[event("FailedScheduling", "0/3 nodes are available", count=64)])

    assert one.signals == {SCHEDULING}
    assert many.score > one.score


def test_events_of_other_workloads_are_ignored() -> None:
    assert (
        findings(
            events=[
                event("BackOff", involved="checkout-worker-6b9c7d8f5-x2k9q"),
                event("BackOff", involved="payments-7d9f8b6c4d-x2k9q"),
            ]
        )
        == []
    )


def test_normal_events_unwatched_reasons_and_old_events_are_ignored() -> None:
    assert (
        findings(
            events=[
                event("BackOff", type_="Normal"),
                event("FailedGetScale", "no metrics"),
                event("BackOff", at=-30),
            ]
        )
        == []
    )


def test_workload_objects_are_matched_by_kubernetes_naming() -> None:
    assert belongs_to("checkout", "checkout")
    assert belongs_to("checkout-7d9f8b6c4d", "checkout")
    assert belongs_to("checkout-7d9f8b6c4d-x2k9q", "checkout")
    assert belongs_to("checkout-0", "checkout")
    assert not belongs_to("checkout-worker", "checkout")
    assert not belongs_to("checkout-worker-7d9f8b6c4d-x2k9q", "checkout")


def test_config_error_messages_signal_config() -> None:
    [finding] = findings(
        events=[event("Failed", "Error: couldn't find key DB_URL in ConfigMap shop/checkout\"")]
    )

    assert finding.signals == {CONFIG}


def test_missing_secret_on_mount_signals_config() -> None:
    message = 'MountVolume.SetUp failed for volume "creds" : secret "checkout-db" not found'
    [finding] = findings(events=[event("FailedMount", message)])

    assert finding.signals == {CONFIG}


def test_image_pull_back_off_is_config_not_a_crash_loop() -> None:
    [finding] = findings(events=[event("BackOff", 'Back-off pulling image "app:1.5.0"')])

    assert finding.signals == {CONFIG}


def test_failing_probes_signal_errors_and_timed_out_probes_latency() -> None:
    [errors] = findings(
        events=[
            event("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 500")
        ]
    )
    [slow] = findings(
        events=[event("Unhealthy", "Liveness probe failed: context deadline exceeded")]
    )

    assert errors.signals == {ERROR_SURGE}
    assert slow.signals == {LATENCY}


def test_oom_killed_pod_signals_oom() -> None:
    killed = Termination("OOMKilled", 137, SINCE + timedelta(minutes=3))

    [finding] = findings(pods=[pod(POD, container(last=killed, restarts=4))])

    assert (finding.kind, finding.source) == ("k8s_event", "kubernetes")
    assert finding.signals == {OOM}
    assert finding.score == 0.9
    assert finding.started_at == SINCE + timedelta(minutes=3)
    assert finding.figures["restarts"] == 4
    assert "1 OOMKilled (exit 137)" in finding.title


def test_oom_kill_before_the_window_is_history() -> None:
    old = Termination("OOMKilled", 137, SINCE - timedelta(days=2))

    assert findings(pods=[pod(POD, container(last=old, restarts=1))]) == []


def test_crash_looping_pod_signals_crashloop() -> None:
    crashed = Termination("Error", 1, SINCE + timedelta(minutes=7))

    [finding] = findings(
        pods=[pod(POD, container(waiting="CrashLoopBackOff", last=crashed, restarts=9))]
    )

    assert finding.signals == {CRASHLOOP}
    assert finding.title == "checkout pods: 1 in CrashLoopBackOff; 9 restarts"
    assert finding.query == f"kubectl -n shop get pods {POD} -o wide"


def test_pod_waiting_on_a_config_error_signals_config() -> None:
    [finding] = findings(pods=[pod(POD, container(waiting="CreateContainerConfigError"))])

    assert finding.signals == {CONFIG}


def test_healthy_pods_and_pods_of_other_workloads_give_no_finding() -> None:
    looping = container(waiting="CrashLoopBackOff", restarts=3)

    assert findings(pods=[pod(POD, container()), pod("payments-0", looping)]) == []


def test_rollout_in_the_window_is_a_deploy_finding_naming_the_image_change() -> None:
    [finding] = findings(rollouts=[rollout(12)])

    assert (finding.kind, finding.source) == ("deploy", "kubernetes")
    assert finding.signals == {ROLLOUT}
    assert (
        finding.title == "checkout rolled out revision 12: image app:1.4.2 → app:1.5.0 at 10:01 UTC"
    )
    assert finding.started_at == SINCE + timedelta(minutes=1)
    assert finding.figures["changed_images"] == {"app": ["app:1.4.2", "app:1.5.0"]}
    assert finding.query == "kubectl -n shop rollout history deployment/checkout --revision=12"


def test_rollout_shortly_before_the_incident_scores_higher() -> None:
    start = SINCE + timedelta(minutes=20)
    [recent] = findings(rollouts=[rollout(at=start - timedelta(minutes=10))], incident_start=start)
    [during] = findings(rollouts=[rollout(at=start + timedelta(minutes=10))], incident_start=start)

    assert recent.score == 0.8
    assert during.score == 0.5


def test_rollout_before_since_is_ignored() -> None:
    assert findings(rollouts=[rollout(at=SINCE - timedelta(minutes=1))]) == []

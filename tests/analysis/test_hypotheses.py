"""Specification of the ranking of root-cause hypotheses: deterministic and explainable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reliability_studio.analysis.findings import (
    CONFIG,
    DOWNSTREAM_PREFIX,
    ERROR_SURGE,
    LATENCY,
    OOM,
    ROLLOUT,
    SATURATION,
    TRAFFIC,
    Finding,
    FindingKind,
    Source,
)
from reliability_studio.analysis.hypotheses import EvidenceRef, rank

START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _ref(
    evidence_id: str,
    service: str,
    *signals: str,
    score: float = 0.8,
    minutes: float | None = 0,
    kind: FindingKind = "metric_anomaly",
    source: Source = "prometheus",
) -> EvidenceRef:
    started = START + timedelta(minutes=minutes) if minutes is not None else None
    return EvidenceRef(
        evidence_id,
        Finding(
            kind=kind,
            source=source,
            service=service,
            title=f"{service} {evidence_id}",
            score=score,
            component=f"component-{evidence_id}",
            started_at=started,
            signals=frozenset(signals),
        ),
    )


def test_no_evidence_gives_no_hypotheses() -> None:
    assert rank([], START) == []


def test_the_service_whose_anomaly_started_first_ranks_first() -> None:
    ranked = rank(
        [
            _ref("a", "checkout", ERROR_SURGE, minutes=3),
            _ref("b", "payments", ERROR_SURGE, minutes=0),
        ],
        START,
    )
    assert [h.service for h in ranked] == ["payments", "checkout"]
    assert "started first" in ranked[0].explanation


def test_errors_originating_downstream_blame_the_downstream_service() -> None:
    ranked = rank(
        [
            _ref(
                "a",
                "checkout",
                ERROR_SURGE,
                DOWNSTREAM_PREFIX + "payments",
                minutes=0,
                kind="trace_errors",
                source="tempo",
            ),
            _ref("b", "payments", ERROR_SURGE, minutes=1, score=0.5),
        ],
        START,
    )
    assert ranked[0].service == "payments"
    assert ranked[0].kind == "dependency_failure"
    assert "checkout" in ranked[0].explanation
    victim = next(h for h in ranked if h.service == "checkout")
    assert victim.parts["victim"] < 0


def test_a_dependency_with_no_telemetry_of_its_own_is_still_suspected() -> None:
    ranked = rank(
        [
            _ref(
                "a",
                "api",
                ERROR_SURGE,
                DOWNSTREAM_PREFIX + "postgres",
                kind="trace_errors",
                source="tempo",
            )
        ],
        START,
    )
    assert ranked[0].service == "postgres"
    assert ranked[0].evidence_ids == []


def test_a_rollout_just_before_the_trouble_makes_a_deploy_hypothesis() -> None:
    ranked = rank(
        [
            _ref("d", "search", ROLLOUT, minutes=-5, kind="deploy", source="kubernetes", score=0.8),
            _ref("e", "search", ERROR_SURGE, minutes=1),
            _ref("f", "web", ERROR_SURGE, minutes=0, score=0.9),
        ],
        START,
    )
    top = ranked[0]
    assert (top.service, top.kind) == ("search", "deploy")
    assert top.parts["change"] > 0
    assert "changed just before" in top.explanation


def test_a_rollout_long_before_the_trouble_is_not_a_coincidence() -> None:
    ranked = rank(
        [
            _ref("d", "search", ROLLOUT, minutes=-300, kind="deploy", source="kubernetes"),
            _ref("e", "search", ERROR_SURGE, minutes=1),
        ],
        START,
    )
    assert ranked[0].kind == "error_surge"
    assert "change" not in ranked[0].parts


def test_oom_kills_make_a_resource_exhaustion_hypothesis() -> None:
    ranked = rank([_ref("o", "worker", OOM, kind="k8s_event", source="kubernetes")], START)
    assert ranked[0].kind == "resource_exhaustion"


def test_config_errors_make_a_config_hypothesis() -> None:
    ranked = rank([_ref("c", "gateway", CONFIG, kind="log_pattern", source="loki")], START)
    assert ranked[0].kind == "config"


def test_latency_without_errors_is_saturation() -> None:
    ranked = rank([_ref("l", "search", LATENCY), _ref("s", "search", SATURATION)], START)
    assert ranked[0].kind == "saturation"


def test_scores_stay_within_zero_and_one() -> None:
    refs = [_ref(str(i), "svc", ERROR_SURGE, ROLLOUT, score=1.0, minutes=0) for i in range(10)]
    refs.append(_ref("x", "other", ERROR_SURGE, DOWNSTREAM_PREFIX + "svc"))
    for hypothesis in rank(refs, START):
        assert 0.0 <= hypothesis.score <= 1.0


def test_the_same_evidence_always_gives_the_same_ranking() -> None:
    refs = [_ref("a", "b-svc", ERROR_SURGE), _ref("b", "a-svc", ERROR_SURGE)]
    first = rank(refs, START)
    assert rank(list(reversed(refs)), START) == first
    assert [h.service for h in first] == ["a-svc", "b-svc"]  # a tie breaks on the name


def test_evidence_ids_are_listed_strongest_first() -> None:
    ranked = rank(
        [
            _ref("weak", "svc", ERROR_SURGE, score=0.2),
            _ref("strong", "svc", ERROR_SURGE, score=0.9),
        ],
        START,
    )
    assert ranked[0].evidence_ids == ["strong", "weak"]
    assert ranked[0].component == "component-strong"


def test_a_service_whose_traffic_surged_first_is_not_a_victim_of_what_it_overloaded() -> None:
    ranked = rank(
        [
            _ref("t", "web", TRAFFIC, minutes=0),
            _ref(
                "w",
                "web",
                ERROR_SURGE,
                DOWNSTREAM_PREFIX + "checkout",
                minutes=2,
                kind="trace_errors",
                source="tempo",
            ),
            _ref("c", "checkout", SATURATION, ERROR_SURGE, minutes=1),
        ],
        START,
    )
    assert ranked[0].service == "web"
    assert ranked[0].kind == "saturation"
    assert "victim" not in ranked[0].parts
    checkout = next(h for h in ranked if h.service == "checkout")
    assert "origin" not in checkout.parts


def test_a_surge_that_came_after_the_trouble_downstream_does_not_excuse_the_caller() -> None:
    ranked = rank(
        [
            _ref("t", "web", TRAFFIC, minutes=5),
            _ref(
                "w",
                "web",
                ERROR_SURGE,
                DOWNSTREAM_PREFIX + "checkout",
                minutes=2,
                kind="trace_errors",
                source="tempo",
            ),
            _ref("c", "checkout", ERROR_SURGE, minutes=0),
        ],
        START,
    )
    assert ranked[0].service == "checkout"
    web = next(h for h in ranked if h.service == "web")
    assert web.parts["victim"] < 0

"""Log template mining: new and spiking error templates between a baseline and an incident window,
and the findings they become. All offline: lines are built here (or parsed by the Loki client
from a canned answer)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from reliability_studio.analysis.findings import (
    CONFIG,
    ERROR_SURGE,
    NEW_ERRORS,
    OOM,
    SATURATION,
)
from reliability_studio.analysis.logs import (
    LogPattern,
    LogTemplates,
    compare,
    log_findings,
    pattern_score,
)
from reliability_studio.telemetry.loki import LogLine, LokiClient, nanoseconds

INCIDENT_START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BASELINE_START = INCIDENT_START - timedelta(hours=1)
TEN_MINUTES = 600.0
QUERY = '{service="checkout", level="error"}'

Entries = list[tuple[datetime, str]]


def lines(start: datetime, count: int, make: Any, every: float = 1.0) -> Entries:
    """`count` lines `make(k)`, `every` seconds apart from `start`."""
    return [(start + timedelta(seconds=k * every), make(k)) for k in range(count)]


def refused(k: int) -> str:
    return f"connection refused to 10.0.{k % 7}.{k % 250 + 1}:{5432 + k % 3} after {k + 1}ms"


def declined(k: int) -> str:
    return f"payment {k:08d}-e29b-41d4-a716-446655440000 declined by provider for user {k}"


def steady(k: int) -> str:
    return f"cache miss for key session:{k} after {k % 9 + 1}.5s"


def pattern(**overrides: Any) -> LogPattern:
    values: dict[str, Any] = {
        "template": "connection refused to <IP>:<NUM>",
        "incident_count": 124,
        "baseline_count": 0,
        "example": "connection refused to 10.0.0.1:5432",
        "first_seen": INCIDENT_START,
        "is_new": True,
        "ratio": math.inf,
        "score": 0.9,
    }
    values.update(overrides)
    return LogPattern(**values)


# --- masking and mining ----------------------------------------------------------------------


def test_lines_of_one_template_differing_in_ids_ips_numbers_and_durations_form_one_pattern() -> (
    None
):
    miner = LogTemplates()
    texts = [
        "request 4bf92f3577b34da6a3ce929d0e0e4736 from 10.1.2.3:443 failed after 250ms (try 1)",
        "request 00f067aa0ba902b7 from 192.168.0.17:8080 failed after 1.5s (try 12)",
        "request 0xDEADBEEF from 10.0.0.1:5432 failed after 2m30s (try 3)",
    ]
    ids = {miner.add(text) for text in texts}

    assert len(ids) == 1
    assert miner.template(ids.pop()) == (
        "request <HEX> from <IP>:<NUM> failed after <DURATION> (try <NUM>)"
    )


def test_uuids_timestamps_and_quoted_values_are_masked_but_a_quoted_message_is_kept() -> None:
    miner = LogTemplates()
    uuid_line = miner.add("order 550e8400-e29b-41d4-a716-446655440000 at 2024-05-01T12:00:00.5Z")
    key_line = miner.add("missing key \"DB_URL\" in 'app.yaml'")
    logfmt = miner.add('level=error msg="payment declined" user="alice"')

    assert miner.template(uuid_line) == "order <UUID> at <TIME>"
    assert miner.template(key_line) == "missing key <STR> in <STR>"
    assert miner.template(logfmt) == 'level=error msg="payment declined" user=<STR>'


def test_distinct_messages_stay_distinct_patterns() -> None:
    miner = LogTemplates()
    first = miner.add(refused(1))
    second = miner.add(declined(1))

    assert first != second
    assert miner.cluster_count == 2


# --- compare ------------------------------------------------------------------------------------


def test_a_template_only_in_the_incident_window_is_new_with_count_example_and_first_seen() -> None:
    baseline = lines(BASELINE_START, 50, steady)
    incident = lines(INCIDENT_START, 50, steady) + lines(INCIDENT_START, 12, refused, every=5)

    [found] = compare(
        baseline, incident, baseline_seconds=TEN_MINUTES, incident_seconds=TEN_MINUTES
    )

    assert found.is_new
    assert found.template == "connection refused to <IP>:<NUM> after <DURATION>"
    assert found.incident_count == 12
    assert found.baseline_count == 0
    assert found.example == refused(0)
    assert found.first_seen == INCIDENT_START
    assert math.isinf(found.ratio)


def test_first_seen_and_example_are_the_earliest_incident_line_whatever_the_input_order() -> None:
    incident = lines(INCIDENT_START, 5, refused, every=10)
    newest_first = list(reversed(incident))  # Loki's default ("backward") order

    [found] = compare([], newest_first, baseline_seconds=60, incident_seconds=60)

    assert found.first_seen == INCIDENT_START
    assert found.example == refused(0)


def test_a_template_ten_times_more_frequent_is_a_spike_with_the_rate_ratio() -> None:
    # Baseline: 6 lines in 60 min (0.1/min). Incident: 10 lines in 10 min (1/min): ratio 10.
    baseline = lines(BASELINE_START, 6, refused, every=600)
    incident = lines(INCIDENT_START, 10, refused, every=60)

    [found] = compare(baseline, incident, baseline_seconds=3600, incident_seconds=600)

    assert not found.is_new
    assert found.incident_count == 10
    assert found.baseline_count == 6
    assert found.ratio == 10.0


def test_a_template_at_its_baseline_rate_is_not_reported() -> None:
    # Same rate (1 line per 10 s) in a 60 min baseline and a 10 min incident window.
    baseline = lines(BASELINE_START, 360, steady, every=10)
    incident = lines(INCIDENT_START, 60, steady, every=10)

    assert compare(baseline, incident, baseline_seconds=3600, incident_seconds=600) == []


def test_a_rise_below_the_spike_ratio_is_not_reported() -> None:
    baseline = lines(BASELINE_START, 10, refused, every=60)
    incident = lines(INCIDENT_START, 40, refused, every=15)  # 4x the baseline rate

    found = compare(baseline, incident, baseline_seconds=600, incident_seconds=600, spike_ratio=5.0)

    assert found == []


def test_a_new_template_below_min_count_is_not_reported() -> None:
    incident = lines(INCIDENT_START, 2, refused)

    assert compare([], incident, baseline_seconds=600, incident_seconds=600, min_count=3) == []


def test_patterns_are_ordered_by_score_frequent_new_then_rare_new_then_mild_spike() -> None:
    baseline = lines(BASELINE_START, 10, steady, every=60)
    incident = (
        lines(INCIDENT_START, 60, steady, every=10)  # spike, ratio 6
        + lines(INCIDENT_START, 5, declined, every=60)  # new, few lines
        + lines(INCIDENT_START, 100, refused, every=6)  # new, many lines
    )

    found = compare(baseline, incident, baseline_seconds=600, incident_seconds=600)

    assert [p.template.split()[0] for p in found] == ["connection", "payment", "cache"]
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)


def test_the_score_rises_with_count_and_ratio_and_a_new_template_beats_a_spike() -> None:
    assert pattern_score(10, math.inf, 5.0) < pattern_score(100, math.inf, 5.0) <= 1.0
    assert pattern_score(100, 5.0, 5.0) < pattern_score(100, 50.0, 5.0)
    assert pattern_score(100, 1e6, 5.0) < pattern_score(100, math.inf, 5.0)
    assert pattern_score(3, 5.0, 5.0) >= 0.0


def test_empty_inputs_give_no_patterns() -> None:
    assert compare([], [], baseline_seconds=600, incident_seconds=600) == []
    assert (
        compare(lines(BASELINE_START, 10, refused), [], baseline_seconds=1, incident_seconds=1)
        == []
    )


def test_log_lines_from_the_loki_client_and_time_text_tuples_give_the_same_patterns() -> None:
    incident = lines(INCIDENT_START, 8, refused, every=7)
    answer = {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": [
                {
                    "stream": {"service": "checkout", "level": "error"},
                    "values": [[str(nanoseconds(t)), text] for t, text in reversed(incident)],
                }
            ],
        },
    }

    async def fetch() -> list[LogLine]:
        client = LokiClient(
            "http://loki.invalid",
            transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)),
        )
        try:
            result = await client.query_range(QUERY, INCIDENT_START, INCIDENT_START)
        finally:
            await client.close()
        return result.lines

    loki_lines = asyncio.run(fetch())

    from_loki = compare([], loki_lines, baseline_seconds=600, incident_seconds=600)
    from_tuples = compare([], incident, baseline_seconds=600, incident_seconds=600)
    assert isinstance(loki_lines[0], LogLine)
    assert from_loki == from_tuples
    assert from_loki[0].incident_count == 8


# --- findings -----------------------------------------------------------------------------------


def test_a_new_pattern_becomes_a_loki_finding_with_title_figures_and_start() -> None:
    [finding] = log_findings("checkout", [pattern()], query=QUERY)

    assert finding.kind == "log_pattern"
    assert finding.source == "loki"
    assert finding.service == "checkout"
    assert finding.title == (
        'New log pattern in checkout: "connection refused to <IP>:<NUM>" \u00d7124'
    )
    assert finding.started_at == INCIDENT_START
    assert finding.query == QUERY
    assert finding.score == 0.9
    assert finding.figures == {
        "template": "connection refused to <IP>:<NUM>",
        "example": "connection refused to 10.0.0.1:5432",
        "incident_count": 124,
        "baseline_count": 0,
        "ratio": None,
        "is_new": True,
        "first_seen": INCIDENT_START.isoformat(),
    }
    assert finding.signals == {NEW_ERRORS}


def test_a_spiking_pattern_carries_error_surge_and_its_ratio() -> None:
    spike = pattern(template="payment declined", baseline_count=4, is_new=False, ratio=12.345)

    [finding] = log_findings("checkout", [spike], query=QUERY)

    assert finding.signals == {ERROR_SURGE}
    assert finding.figures["ratio"] == 12.35
    assert "12.3\u00d7 baseline" in finding.title


def test_keyword_table_adds_saturation_oom_and_config_signals() -> None:
    cases = {
        "FATAL: too many connections for role <STR>": {SATURATION},
        "timeout acquiring connection from pool after <DURATION>": {SATURATION},
        "connection pool exhausted (size <NUM>)": {SATURATION},
        "java.lang.OutOfMemoryError: Java heap space": {OOM},
        "fatal error: runtime: out of memory": {OOM},
        "container <*> was OOMKilled": {OOM},
        "failed to parse config: invalid value for <STR>": {CONFIG},
        "missing key <STR> in settings": {CONFIG},
        "open <*> no such file or directory": {CONFIG},
        "connection refused to <IP>:<NUM>": set(),
    }
    for template, extra in cases.items():
        [finding] = log_findings("checkout", [pattern(template=template)], query=QUERY)
        assert finding.signals == {NEW_ERRORS, *extra}, template


def test_keywords_are_also_read_in_the_example_line() -> None:
    masked = pattern(template="container exited: reason=<STR>", example='reason="OOMKilled"')

    [finding] = log_findings("checkout", [masked], query=QUERY)

    assert OOM in finding.signals


def test_findings_keep_the_limit_highest_scores() -> None:
    patterns = [pattern(template=f"error {k}", score=k / 10) for k in range(10)]

    found = log_findings("checkout", patterns, query=QUERY, limit=3)

    assert [f.figures["template"] for f in found] == ["error 9", "error 8", "error 7"]

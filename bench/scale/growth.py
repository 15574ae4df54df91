"""Cost growth: the same list page from a large and a small database, in alternated rounds.

Both servers run at once and are loaded in turn, a few seconds each, several times. Two
figures taken minutes apart carried the host's drift between them as much as the data's
size: in run 9 of 2026-11-27 the ratio was 1.57 with no change to the list (0.88 to 1.12
in the eight runs before), its small-database figure the fastest of all nine runs.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.scale.wrk import Load, run_wrk

ROUNDS = 3


def alternate(big_url: str, small_url: str, load: Load, token: str | None) -> dict[str, Any]:
    """Load `big_url`, then `small_url`, ROUNDS times, splitting `load.seconds` between the
    rounds; the p50 of each and their medians (see `summarize`)."""
    round_load = Load(load.connections, load.threads, max(1, load.seconds // ROUNDS))
    rounds = []
    for _ in range(ROUNDS):
        big = run_wrk(big_url, None, round_load, token=token)
        small = run_wrk(small_url, None, round_load, token=token)
        p50s = {"big_p50": big["latency_ms"]["p50"], "small_p50": small["latency_ms"]["p50"]}
        rounds.append(p50s)
    return summarize(rounds)


def summarize(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """The rounds with the median p50 of each size and the median of the rounds' ratios
    (each ratio compares two figures taken seconds apart)."""
    return {
        "rounds": rounds,
        "big_p50": statistics.median(r["big_p50"] for r in rounds),
        "small_p50": statistics.median(r["small_p50"] for r in rounds),
        "ratio": statistics.median(r["big_p50"] / r["small_p50"] for r in rounds),
    }

"""Log template mining: which kinds of error line are new, or spiking, during an incident.

Error lines differ in their variable parts (ids, addresses, durations) even when they say the
same thing, so counting raw lines says nothing. Drain (`drain3`) groups lines into templates
("connection refused to <IP>:<NUM>"); this module mines the baseline and the incident windows
with one miner, so a template has one identity in both, then compares each template's rate in
the two windows and turns the new and spiking ones into findings.

Pure and synchronous (no I/O, no shared state: each call builds its own miner), so the CPU-heavy
mining can run in a worker thread (`asyncio.to_thread`). The miner is configured here, in code:
`drain3.TemplateMiner()` without a config would look for a `drain3.ini` in the working
directory, and persistence is off (nothing outlives a call).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drain3.masking import MaskingInstruction  # type: ignore[import-untyped]
from drain3.template_miner import TemplateMiner  # type: ignore[import-untyped]
from drain3.template_miner_config import TemplateMinerConfig  # type: ignore[import-untyped]

from reliability_studio.analysis.findings import (
    CONFIG,
    ERROR_SURGE,
    NEW_ERRORS,
    OOM,
    SATURATION,
    Finding,
)
from reliability_studio.telemetry.loki import LogLine

# --- the miner -------------------------------------------------------------------------------

# Drain settings. `depth` 4 (Drain's own): the prefix tree keys on the token count and the first
# token only; a deeper tree also keys on the second token, and a variable there without digits (a
# path, a pod name) makes a cluster per value until the node is full (`max_children`).
# `sim_th` 0.5: a line joins a template when at least half its tokens are equal (0.4 merges
# distinct errors sharing a few words). `max_children` bounds the tree's fan-out per node. No
# `max_clusters`: an evicted cluster would lose its counts, and the input (one Loki query per
# window) is bounded. `bench/drain_throughput.py` checks these on 40 realistic templates.
DRAIN_DEPTH = 4
DRAIN_SIM_TH = 0.5
DRAIN_MAX_CHILDREN = 100

# Boundaries of a masked value: not inside a longer word or number.
_B = r"(?<![A-Za-z0-9])"
_E = r"(?![A-Za-z0-9])"
_DURATION_UNIT = r"(?:ns|us|µs|ms|s|m|h)"

# Masks, applied in this order before Drain sees a line: each turns a variable part into a
# named placeholder, so that lines differing only there land in one template even when Drain's
# similarity alone would split them (a line of few tokens, a variable in the first tokens).
# Quoted strings are masked only without whitespace (a key, a file, a user name): a quoted
# string with spaces is usually the message itself (logfmt `msg="..."`, JSON values), and
# masking it would put every message in one template. A double-quoted JSON key (followed by `:`)
# stays. An opening quote follows no letter or quote (`can't`, the `":"` between JSON strings).
MASKS: tuple[tuple[str, str], ...] = (
    (
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
        "TIME",
    ),
    (
        _B + r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}" + _E,
        "UUID",
    ),
    (r"(?<![\w\"])\"[^\"\s]*\"(?!\s*:)|(?<![\w'])'[^'\s]*'", "STR"),
    (r"(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9])", "IP"),
    (
        # 0x-prefixed, or 8+ hex digits with at least one digit and one letter (trace and span
        # ids, hashes, pod suffixes): all-digit runs are numbers, all-letter runs are words.
        _B + r"(?:0x[0-9a-fA-F]+|(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,})" + _E,
        "HEX",
    ),
    (
        r"(?<![A-Za-z0-9_.])(?:\d+(?:\.\d+)?" + _DURATION_UNIT + r")+(?![A-Za-z0-9_])",
        "DURATION",
    ),
    (r"(?<![A-Za-z0-9_.])\d+(?:\.\d+)?(?![A-Za-z0-9_]|\.\d)", "NUM"),
)


def miner_config() -> TemplateMinerConfig:
    """The Drain settings and masks above, as a `drain3` config (no file, no profiling)."""
    config = TemplateMinerConfig()
    config.drain_depth = DRAIN_DEPTH
    config.drain_sim_th = DRAIN_SIM_TH
    config.drain_max_children = DRAIN_MAX_CHILDREN
    config.drain_max_clusters = None
    config.drain_extra_delimiters = []
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    config.mask_prefix = "<"
    config.mask_suffix = ">"
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in MASKS]
    return config


class LogTemplates:
    """One Drain miner configured as above: lines in, stable cluster ids and templates out.

    A line's cluster id never changes; the cluster's template only grows more general as lines
    join it, so read templates (`template`) after all lines are added. Not thread-safe: use one
    per thread (they are cheap).
    """

    def __init__(self) -> None:
        self._miner = TemplateMiner(persistence_handler=None, config=miner_config())

    def add(self, line: str) -> int:
        """Mine one line; the id of the cluster it joined (or created)."""
        result: dict[str, Any] = self._miner.add_log_message(line)
        return int(result["cluster_id"])

    def template(self, cluster_id: int) -> str:
        """The current template of a cluster, e.g. `connection refused to <IP>:<NUM>`."""
        return str(self._miner.drain.id_to_cluster[cluster_id].get_template())

    @property
    def cluster_count(self) -> int:
        """How many clusters (templates) the miner holds."""
        return len(self._miner.drain.id_to_cluster)


# --- comparing two windows ---------------------------------------------------------------------

# The incident count at which a pattern's volume term reaches one half (see `pattern_score`).
HALF_VOLUME_COUNT = 20


@dataclass(frozen=True)
class LogPattern:
    """A template and how often it occurred in the baseline and the incident windows.

    `ratio` is the incident rate over the baseline rate (each count divided by its window's
    length), `math.inf` for a new template. `example` is the template's first line in the
    incident window and `first_seen` its time. `score` is `pattern_score`, in [0, 1].
    """

    template: str
    incident_count: int
    baseline_count: int
    example: str
    first_seen: datetime | None
    is_new: bool
    ratio: float
    score: float


LogInput = Sequence[LogLine] | Sequence[tuple[datetime, str]]


def pattern_score(incident_count: int, ratio: float, spike_ratio: float) -> float:
    """Confidence that a template is abnormal: `novelty * (1 + volume) / 2`, in [0, 1].

    `novelty = ratio / (ratio + spike_ratio)`: 1 for a new template (infinite ratio), 0.5 for a
    template at exactly the spike threshold, rising with the ratio. `volume = n / (n + 20)` for
    `n` incident lines: 0.5 at 20 lines, near 1 in the hundreds, so a handful of lines never
    scores high. Non-decreasing in the count and in the ratio, and a new template scores above
    any spike of the same count.
    """
    novelty = 1.0 if math.isinf(ratio) else ratio / (ratio + spike_ratio)
    volume = incident_count / (incident_count + HALF_VOLUME_COUNT)
    return min(1.0, max(0.0, novelty * (1.0 + volume) / 2.0))


def _entries(lines: LogInput) -> list[tuple[datetime, str]]:
    """`(time, text)` pairs, oldest first (Loki answers newest first by default)."""
    entries = [
        (item.timestamp, item.line) if isinstance(item, LogLine) else (item[0], item[1])
        for item in lines
    ]
    entries.sort(key=lambda entry: entry[0])
    return entries


@dataclass
class _Tally:
    incident: int = 0
    baseline: int = 0
    example: str = ""
    first_seen: datetime | None = None


def compare(
    baseline: LogInput,
    incident: LogInput,
    *,
    baseline_seconds: float,
    incident_seconds: float,
    min_count: int = 3,
    spike_ratio: float = 5.0,
) -> list[LogPattern]:
    """The templates new or spiking in `incident` against `baseline`, highest score first.

    Both windows go through one miner, baseline first (each window oldest first), so a template
    is the same cluster in both. A template is reported when it has at least `min_count` lines
    in the incident window and either none in the baseline (new) or an incident rate at least
    `spike_ratio` times its baseline rate, the rates being counts over the window lengths
    (`baseline_seconds`, `incident_seconds`), which need not be equal.
    """
    if baseline_seconds <= 0 or incident_seconds <= 0:
        raise ValueError("window lengths must be positive")
    baseline_entries, incident_entries = _entries(baseline), _entries(incident)
    if not incident_entries:
        return []
    miner = LogTemplates()
    baseline_ids = [miner.add(text) for _, text in baseline_entries]
    incident_ids = [miner.add(text) for _, text in incident_entries]

    # Keyed by the final template: two clusters that ended up alike count as one pattern.
    tallies: dict[str, _Tally] = {}
    for cluster_id in baseline_ids:
        tallies.setdefault(miner.template(cluster_id), _Tally()).baseline += 1
    for cluster_id, (moment, text) in zip(incident_ids, incident_entries, strict=True):
        tally = tallies.setdefault(miner.template(cluster_id), _Tally())
        if tally.incident == 0:
            tally.example, tally.first_seen = text, moment
        tally.incident += 1

    patterns = []
    for template, tally in tallies.items():
        if tally.incident < min_count:
            continue
        if tally.baseline == 0:
            ratio = math.inf
        else:
            ratio = (tally.incident / incident_seconds) / (tally.baseline / baseline_seconds)
            if ratio < spike_ratio:
                continue
        patterns.append(
            LogPattern(
                template=template,
                incident_count=tally.incident,
                baseline_count=tally.baseline,
                example=tally.example,
                first_seen=tally.first_seen,
                is_new=tally.baseline == 0,
                ratio=ratio,
                score=pattern_score(tally.incident, ratio, spike_ratio),
            )
        )
    return sorted(patterns, key=_order)


def _order(pattern: LogPattern) -> tuple[float, int, str]:
    return (-pattern.score, -pattern.incident_count, pattern.template)


# --- findings ------------------------------------------------------------------------------------

# What a pattern's words suggest, beyond "errors": matched (case-insensitive) against the template
# and the example line, as a masked value (a quoted word) may be the telling part. Kept small on
# purpose: each entry is a phrase that names its cause unambiguously in common runtimes and
# drivers (PostgreSQL "too many connections", HikariCP/SQLAlchemy "pool ... exhausted" and
# "timeout acquiring", the JVM's OutOfMemoryError, Kubernetes' OOMKilled, "no such file").
KEYWORD_SIGNALS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"too many connections|\bpool\b|exhausted|timeout acquiring", re.IGNORECASE),
        SATURATION,
    ),
    (re.compile(r"out ?of ?memory|oomkill", re.IGNORECASE), OOM),
    (
        re.compile(r"\bconfig|invalid value|missing key|no such file", re.IGNORECASE),
        CONFIG,
    ),
)

_TIMES = "\u00d7"  # the multiplication sign, as in "x124"
_MAX_TITLE_TEMPLATE = 120
_MAX_EXAMPLE = 1000


def pattern_signals(pattern: LogPattern) -> frozenset[str]:
    """NEW_ERRORS for a new template, ERROR_SURGE for a spike, plus the keyword table's."""
    signals = {NEW_ERRORS if pattern.is_new else ERROR_SURGE}
    text = f"{pattern.template}\n{pattern.example}"
    signals.update(signal for regex, signal in KEYWORD_SIGNALS if regex.search(text))
    return frozenset(signals)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(service: str, pattern: LogPattern) -> str:
    quoted = f'"{_shorten(pattern.template, _MAX_TITLE_TEMPLATE)}" {_TIMES}{pattern.incident_count}'
    if pattern.is_new:
        return f"New log pattern in {service}: {quoted}"
    return f"Log pattern spiking in {service}: {quoted} ({pattern.ratio:.1f}{_TIMES} baseline rate)"


def log_findings(
    service: str, patterns: Sequence[LogPattern], *, query: str, limit: int = 5
) -> list[Finding]:
    """The `limit` highest-scoring patterns as findings (`kind="log_pattern"`, from Loki).

    `query` is the LogQL that fetched the lines, so a human can reproduce them. The figures are
    JSON-ready: `ratio` is None for a new template (its ratio is infinite).
    """
    findings = []
    for pattern in sorted(patterns, key=_order)[: max(0, limit)]:
        figures: dict[str, Any] = {
            "template": pattern.template,
            "example": _shorten(pattern.example, _MAX_EXAMPLE),
            "incident_count": pattern.incident_count,
            "baseline_count": pattern.baseline_count,
            "ratio": None if pattern.is_new else round(pattern.ratio, 2),
            "is_new": pattern.is_new,
            "first_seen": pattern.first_seen.isoformat() if pattern.first_seen else None,
        }
        findings.append(
            Finding(
                kind="log_pattern",
                source="loki",
                service=service,
                title=_title(service, pattern),
                score=pattern.score,
                started_at=pattern.first_seen,
                query=query,
                figures=figures,
                signals=pattern_signals(pattern),
            )
        )
    return findings

"""Stored SLOs to OpenSLO v1 YAML (`build_export`, `to_documents`); SLOs that OpenSLO
cannot express are listed in a leading comment."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from reliability_studio.slos.openslo.documents import (
    API_VERSION,
    EXPORT_CALENDAR_START,
    MAX_NAME_LENGTH,
    PROMETHEUS,
    _shift,
)
from reliability_studio.slos.openslo.selectors import (
    _le_matcher,
    _matchers,
    _normalised_sli,
    render_selector,
)

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


# ---------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ServiceRecord:
    """A catalog service, as exported."""

    name: str
    description: str | None = None


@dataclass(frozen=True)
class SLORecord:
    """A stored SLO with its service, as exported."""

    service: ServiceRecord
    name: str
    objective: float
    window_days: int
    calendar_period: str | None
    timezone: str
    sli: dict[str, Any] | None
    description: str | None = None


@dataclass(frozen=True)
class NotExported:
    """An SLO that OpenSLO cannot express, and why."""

    service: str
    name: str
    reason: str


@dataclass(frozen=True)
class Export:
    """The YAML text, how many SLOs it holds, and those left out (listed in the text too)."""

    text: str
    exported: int
    not_exported: list[NotExported]


def to_documents(slos: Sequence[SLORecord], services: Sequence[ServiceRecord] = ()) -> str:
    """The OpenSLO v1 YAML of `slos` (and of `services`, even those without SLOs)."""
    return build_export(slos, services).text


def build_export(slos: Sequence[SLORecord], services: Sequence[ServiceRecord] = ()) -> Export:
    """Service and SLO documents; SLOs that OpenSLO cannot express go in a leading comment."""
    ordered = sorted(slos, key=lambda slo: (slo.service.name, slo.name))
    indicators: list[tuple[SLORecord, dict[str, Any]]] = []
    skipped: list[NotExported] = []
    for slo in ordered:
        indicator = _export_indicator(slo)
        if isinstance(indicator, str):
            skipped.append(NotExported(slo.service.name, slo.name, indicator))
        else:
            indicators.append((slo, indicator))

    wanted = {service.name: service for service in services}
    for slo, _ in indicators:
        wanted.setdefault(slo.service.name, slo.service)
    service_names = _unique_slugs(sorted(wanted), "service")
    slo_names = _unique_slugs([slo.name for slo, _ in indicators], "slo")

    documents: list[dict[str, Any]] = []
    for name in sorted(wanted):
        service = wanted[name]
        service_spec = {} if service.description is None else {"description": service.description}
        documents.append(_document("Service", service_names[name], name, service_spec))
    for (slo, indicator), metadata_name in zip(indicators, slo_names.ordered, strict=True):
        spec: dict[str, Any] = {}
        if slo.description is not None:
            spec["description"] = slo.description
        spec["service"] = service_names[slo.service.name]
        spec["indicator"] = {"metadata": {"name": metadata_name}, "spec": indicator}
        spec["timeWindow"] = [_export_window(slo)]
        spec["budgetingMethod"] = "Occurrences"
        spec["objectives"] = [{"target": _shift(slo.objective, -2)}]
        documents.append(_document("SLO", metadata_name, slo.name, spec))

    header = ["# OpenSLO v1, exported by Reliability Studio."]
    header += [
        f"# not exportable: {_quoted(item.name)} of service {_quoted(item.service)}: " + item.reason
        for item in skipped
    ]
    body = yaml.safe_dump_all(
        documents, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1_000_000
    )
    text = "\n".join(header) + "\n" + (body if documents else "")
    return Export(text=text, exported=len(indicators), not_exported=skipped)


def _export_indicator(slo: SLORecord) -> dict[str, Any] | str:
    """The SLI spec of a ratioMetric, or the reason there is none."""
    if slo.sli is None:
        return "a manual SLO (no SLI) has no OpenSLO indicator"
    try:
        sli = _normalised_sli(slo.sli)
    except ValidationError as exc:
        return f"its SLI is not valid: {exc.errors()[0]['msg']}"
    kind = sli["kind"]
    if kind == "ratio":
        numerator = ("bad", sli["errors"]) if "errors" in sli else ("good", sli["good"])
        ratio = {"counter": True, numerator[0]: _metric(numerator[1])}
        ratio["total"] = _metric(sli["total"])
        return {"ratioMetric": ratio}
    if kind == "latency":
        parts = _matchers(sli["histogram"])
        if parts is None:
            return "its histogram selector uses `or`, which cannot be rewritten as a ratio"
        name, matchers = parts
        threshold = float(sli["threshold_seconds"])
        good = render_selector(name, [*matchers, _le_matcher(threshold)])
        total = render_selector(name.removesuffix("_bucket") + "_count", matchers)
        return {"ratioMetric": {"counter": True, "good": _metric(good), "total": _metric(total)}}
    if kind == "bool_gauge":
        return (
            "a bool_gauge SLI counts samples of a 0/1 gauge, which an OpenSLO counter "
            "ratio cannot express"
        )
    return (
        "a query SLI is a PromQL error ratio with {{window}}, which OpenSLO has no "
        "portable form for"
    )


def _metric(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": PROMETHEUS, "spec": {"query": query}}}


def _export_window(slo: SLORecord) -> dict[str, Any]:
    if slo.calendar_period is None:
        return {"duration": f"{slo.window_days}d", "isRolling": True}
    duration = "1M" if slo.calendar_period == "month" else "1Q"
    return {
        "duration": duration,
        "calendar": {"startTime": EXPORT_CALENDAR_START, "timeZone": slo.timezone},
        "isRolling": False,
    }


def _document(kind: str, name: str, display_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "displayName": display_name},
        "spec": spec,
    }


@dataclass
class _Slugs:
    by_name: dict[str, str]
    ordered: list[str]

    def __getitem__(self, name: str) -> str:
        return self.by_name[name]


def _unique_slugs(names: Sequence[str], fallback: str) -> _Slugs:
    """An RFC 1123 name for each of `names`, unique among them (`-2`, `-3`, … when taken)."""
    taken: set[str] = set()
    ordered: list[str] = []
    for name in names:
        base = slug(name, fallback)
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            suffix = f"-{number}"
            candidate = base[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix
        taken.add(candidate)
        ordered.append(candidate)
    return _Slugs(by_name=dict(zip(names, ordered, strict=True)), ordered=ordered)


def slug(text: str, fallback: str = "x") -> str:
    """`text` as an RFC 1123 label: `API Availability` → `api-availability`."""
    value = _NOT_SLUG.sub("-", text.lower()).strip("-")[:MAX_NAME_LENGTH].rstrip("-")
    return value or fallback


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)

"""Import validators of the parts of an SLO document: its SLI and their queries, its time
window and its objective. Each reports to the document's `_Context`."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from reliability_studio.slos.openslo.documents import (
    CALENDAR_DURATIONS,
    NOMINAL_CALENDAR_DAYS,
    PROMETHEUS,
    FieldPath,
    _shift,
)
from reliability_studio.slos.openslo.plan import _Context, _pydantic_message
from reliability_studio.slos.openslo.selectors import _latency_sli, _normalised_sli
from reliability_studio.slos.schemas import Objective, TimeZone, WindowDays
from reliability_studio.slos.sli import parse_selector

_OBJECTIVE: TypeAdapter[float] = TypeAdapter(Objective)
_WINDOW_DAYS: TypeAdapter[int] = TypeAdapter(WindowDays)
_TIME_ZONE: TypeAdapter[str] = TypeAdapter(TimeZone)
_DURATION = re.compile(r"^([1-9][0-9]{0,6})([mhdwMQY])$")


def _sli(
    context: _Context, value: Any, path: FieldPath, data_sources: dict[str, bool]
) -> dict[str, Any] | None:
    spec = context.mapping(value, path)
    if spec is None:
        return None
    context.known_keys(spec, path, ("description", "thresholdMetric", "ratioMetric"))
    if "thresholdMetric" in spec:
        context.error(
            (*path, "thresholdMetric"),
            "thresholdMetric is not supported: an SLI here counts good and bad events; "
            "use ratioMetric with counter: true",
        )
        return None
    ratio_path = (*path, "ratioMetric")
    if spec.get("ratioMetric") is None:
        context.error(ratio_path, "is required")
        return None
    ratio = context.mapping(spec["ratioMetric"], ratio_path)
    if ratio is None:
        return None
    context.known_keys(ratio, ratio_path, ("counter", "good", "bad", "total", "rawType", "raw"))
    failed = False
    if "raw" in ratio or "rawType" in ratio:
        context.error(
            (*ratio_path, "raw" if "raw" in ratio else "rawType"),
            "precomputed ratios (raw, rawType) are not supported; give good or bad with "
            "total, as counters",
        )
        return None

    counter = ratio.get("counter")
    if counter is None:
        context.error((*ratio_path, "counter"), "is required; only counter: true is supported")
        failed = True
    elif counter is False:
        context.error(
            (*ratio_path, "counter"),
            "counter: false (gauges) is not supported: events are counted with increase(), "
            "which needs counters; use counter: true",
        )
        failed = True
    elif counter is not True:
        context.error((*ratio_path, "counter"), "must be true")
        failed = True

    if "good" in ratio and "bad" in ratio:
        context.error((*ratio_path, "bad"), "give good or bad, not both")
        return None
    if "good" not in ratio and "bad" not in ratio:
        context.error((*ratio_path, "good"), "is required (or bad)")
        return None
    if "total" not in ratio:
        context.error((*ratio_path, "total"), "is required")
        return None
    numerator_key = "good" if "good" in ratio else "bad"
    numerator = _query(context, ratio[numerator_key], (*ratio_path, numerator_key), data_sources)
    total = _query(context, ratio["total"], (*ratio_path, "total"), data_sources)
    if failed or numerator is None or total is None:
        return None

    sli: dict[str, Any] | None = None
    if numerator_key == "good":
        sli = _latency_sli(numerator, total)
    if sli is None:
        sli = {"kind": "ratio", "errors" if numerator_key == "bad" else "good": numerator}
        sli["total"] = total
    try:
        return _normalised_sli(sli)
    except ValidationError as exc:
        for error in exc.errors():
            context.error(ratio_path, _pydantic_message(error))
        return None


def _query(
    context: _Context, value: Any, path: FieldPath, data_sources: dict[str, bool]
) -> str | None:
    """The plain selector of one good/bad/total metric."""
    metric = context.mapping(value, path)
    if metric is None:
        return None
    context.known_keys(metric, path, ("metricSource",))
    source_path = (*path, "metricSource")
    source = context.mapping(metric.get("metricSource"), source_path)
    if source is None:
        return None
    context.known_keys(source, source_path, ("metricSourceRef", "type", "spec"))
    source_type = context.string(source, "type", source_path, required=False)
    source_ref = context.string(source, "metricSourceRef", source_path, required=False)
    if source_type is not None:
        if source_type.lower() != PROMETHEUS.lower():
            context.error(
                (*source_path, "type"),
                f"{source_type} is not supported; only {PROMETHEUS} metric sources are",
            )
            return None
    elif source_ref is not None:
        if source_ref not in data_sources:
            context.error(
                (*source_path, "metricSourceRef"),
                f"no DataSource named {json.dumps(source_ref)} in this upload; add it, "
                f"or give type: {PROMETHEUS}",
            )
            return None
        if not data_sources[source_ref]:
            return None  # the DataSource's own error says why
    else:
        context.error((*source_path, "type"), f"is required: {PROMETHEUS} (or metricSourceRef)")
        return None

    spec_path = (*source_path, "spec")
    spec = context.mapping(source.get("spec"), spec_path)
    if spec is None:
        return None
    context.known_keys(spec, spec_path, ("query",))
    query = context.string(spec, "query", spec_path, required=True)
    if query is None:
        return None
    try:
        parse_selector(query, "query")
    except ValueError as exc:
        context.error((*spec_path, "query"), str(exc))
        return None
    return query


def _time_window(
    context: _Context, value: Any
) -> tuple[int, Literal["month", "quarter"] | None, str] | None:
    path: FieldPath = ("spec", "timeWindow")
    if value is None:
        context.error(path, "is required: one rolling (e.g. 30d) or calendar (1M, 1Q) window")
        return None
    if not isinstance(value, list) or len(value) != 1:
        context.error(path, "must be a list of exactly one time window")
        return None
    path = (*path, 0)
    window = context.mapping(value[0], path)
    if window is None:
        return None
    context.known_keys(window, path, ("duration", "isRolling", "calendar"))
    duration = context.string(window, "duration", path, required=True)
    rolling = window.get("isRolling")
    if rolling is not None and not isinstance(rolling, bool):
        context.error((*path, "isRolling"), "must be true or false")
        return None
    calendar = window.get("calendar")
    if duration is None:
        return None
    match = _DURATION.match(duration)
    if match is None:
        context.error(
            (*path, "duration"),
            f"{duration!r} is not a duration such as 30d, 4w, 1M or 1Q",
        )
        return None
    amount, unit = int(match.group(1)), match.group(2)

    if calendar is None:
        if rolling is False:
            context.error(
                (*path, "calendar"),
                "is required when isRolling is false (a calendar-aligned window)",
            )
            return None
        days = {"d": amount, "w": amount * 7, "h": amount / 24, "m": amount / 1440}.get(unit)
        if days is None or days != int(days):
            context.error(
                (*path, "duration"),
                f"a rolling window of {duration} is not supported: give whole days "
                "(e.g. 28d, 30d, 4w); months, quarters and years vary in length",
            )
            return None
        window_days = context.validated(_WINDOW_DAYS, int(days), (*path, "duration"))
        if window_days is None:
            return None
        return window_days, None, "UTC"

    if rolling is True:
        context.error((*path, "isRolling"), "must be false (or left out) with a calendar")
        return None
    period = CALENDAR_DURATIONS.get(duration)
    if period is None:
        context.error(
            (*path, "duration"),
            f"a calendar window of {duration} is not supported; use 1M (a month) or 1Q (a quarter)",
        )
        return None
    calendar_path = (*path, "calendar")
    calendar_map = context.mapping(calendar, calendar_path)
    if calendar_map is None:
        return None
    context.known_keys(calendar_map, calendar_path, ("startTime", "timeZone"))
    zone_name = context.string(calendar_map, "timeZone", calendar_path, required=False)
    timezone = context.validated(_TIME_ZONE, zone_name or "UTC", (*calendar_path, "timeZone"))
    if "startTime" in calendar_map:
        _check_calendar_start(context, calendar_map["startTime"], period, calendar_path)
    if timezone is None or context.failed:
        return None
    calendar_period: Literal["month", "quarter"] = "month" if period == "month" else "quarter"
    return NOMINAL_CALENDAR_DAYS[period], calendar_period, timezone


def _check_calendar_start(context: _Context, value: Any, period: str, path: FieldPath) -> None:
    path = (*path, "startTime")
    start: datetime | None = None
    if isinstance(value, datetime):
        start = value
    elif isinstance(value, date):
        start = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            start = datetime.fromisoformat(value.strip())
        except ValueError:
            start = None
    if start is None:
        context.error(path, "must be a date and time such as 2024-01-01 00:00:00")
        return
    at_midnight = (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    first_month = period == "month" or start.month in (1, 4, 7, 10)
    if start.day != 1 or not at_midnight or not first_month:
        begins = (
            "a month on the 1st" if period == "month" else "a quarter on 1 Jan, Apr, Jul or Oct"
        )
        context.error(
            path,
            f"{value} is not supported: calendar windows here begin {begins} at 00:00 in timeZone",
        )


def _objective(context: _Context, value: Any) -> float | None:
    path: FieldPath = ("spec", "objectives")
    if value is None:
        context.error(path, "is required: one objective with target or targetPercent")
        return None
    if not isinstance(value, list) or not value:
        context.error(path, "must be a list of one objective")
        return None
    if len(value) > 1:
        context.error(
            path,
            f"{len(value)} objectives are not supported (nor composite SLOs); give one "
            "objective per SLO",
        )
        return None
    path = (*path, 0)
    objective = context.mapping(value[0], path)
    if objective is None:
        return None
    context.known_keys(
        objective,
        path,
        (
            "displayName",
            "target",
            "targetPercent",
            "op",
            "value",
            "timeSliceTarget",
            "timeSliceWindow",
            "indicator",
            "indicatorRef",
            "compositeWeight",
        ),
    )
    refusals = (
        (
            ("indicator", "indicatorRef", "compositeWeight"),
            "composite SLOs (an indicator per objective) are not supported; give the "
            "SLO's indicator in spec.indicator",
        ),
        (
            ("op", "value"),
            "threshold objectives (op, value) are not supported: they need a "
            "thresholdMetric; use a ratioMetric",
        ),
        (
            ("timeSliceTarget", "timeSliceWindow"),
            "time slices are not supported; use budgetingMethod Occurrences",
        ),
    )
    for keys, message in refusals:
        present = [key for key in keys if key in objective]
        if present:  # one error per feature, on its first field
            context.error((*path, present[0]), message)
    target, percent = objective.get("target"), objective.get("targetPercent")
    if target is not None and percent is not None:
        context.error((*path, "targetPercent"), "give target or targetPercent, not both")
        return None
    if target is None and percent is None:
        context.error((*path, "target"), "is required (or targetPercent)")
        return None
    key = "target" if target is not None else "targetPercent"
    number = target if target is not None else percent
    if isinstance(number, bool) or not isinstance(number, int | float):
        context.error((*path, key), "must be a number")
        return None
    if not math.isfinite(number):
        context.error((*path, key), "must be a finite number")
        return None
    if key == "target" and not 0 < number < 1:
        context.error((*path, key), "must be between 0 and 1 (both excluded), e.g. 0.999")
        return None
    percent_value = _shift(number, 2) if key == "target" else float(number)
    result = context.validated(_OBJECTIVE, percent_value, (*path, key))
    return None if result is None or context.failed else float(result)

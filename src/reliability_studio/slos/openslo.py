"""OpenSLO v1 documents to and from our SLO definitions. Pure: no I/O.

What is imported (`to_definitions`):

- `Service`: a catalog service, named by `metadata.displayName` (or `metadata.name`);
  `spec.description` is applied when given.
- `SLO` with `budgetingMethod: Occurrences`, one `timeWindow` (rolling, in whole days, e.g.
  `28d`, `4w`; or calendar-aligned `1M`/`1Q` with `calendar.timeZone`), one objective
  (`target` or `targetPercent`) and an SLI given inline (`indicator`) or by `indicatorRef`.
  Its name is `metadata.displayName` (or `metadata.name`); `spec.service` names a `Service`
  document of the upload, or else a catalog service by name (created when missing).
- `SLI` with `ratioMetric`, `counter: true`, `good` or `bad` with `total`, each a Prometheus
  `metricSource` whose `spec.query` is a plain series selector: the engine itself computes
  `sum(increase(selector[window]))`. A ratio of a histogram's `_bucket{le="x"}` over its
  `_count` with the same other matchers is recognised as our `latency` SLI (the same
  counts); every other ratio becomes our `ratio` SLI.
- `DataSource` of type Prometheus: accepted so that `metricSourceRef` resolves, and reported
  as ignored, because queries always go to the Prometheus at PROMETHEUS_URL, whatever its
  `connectionDetails` say.

Reported as ignored, never silently: `DataSource` documents (above) and `SLI` documents that
no SLO of the upload refers to (SLIs are stored only as part of an SLO). `metadata.labels`,
`metadata.annotations` and an objective's `displayName` are descriptive and are not kept.

Refused, each with the document and the field: other apiVersions; the kinds `AlertPolicy`,
`AlertCondition`, `AlertNotificationTarget` and any other; `spec.alertPolicies` (our
multi-window, multi-burn-rate alerts apply to every SLO); `Timeslices`/`RatioTimeslices`
budgeting; several objectives and per-objective indicators (composite SLOs); threshold
objectives (`op`/`value`) and `thresholdMetric`; `counter: false`; `raw`/`rawType`; metric
sources other than Prometheus; queries that are not plain selectors; rolling windows not in
whole days, or outside 1..365 days; calendar windows other than `1M`/`1Q`, or whose
`startTime` is not the start of a month (quarter); unknown fields.

What is exported (`build_export`): every SLO whose SLI is `ratio` or `latency`, as a
`Service` document per service and an `SLO` document with its indicator inline. Manual SLOs
(no SLI), `bool_gauge` and `query` SLIs cannot be written as an OpenSLO counter ratio; they
are listed in a leading comment, `# not exportable: ...`, with the reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import promql_parser
import yaml
from pydantic import TypeAdapter, ValidationError

from reliability_studio.api.fields import LongText, Name
from reliability_studio.slos.schemas import Objective, TimeZone, WindowDays
from reliability_studio.slos.sli import SLI, parse_selector

API_VERSION = "openslo/v1"
SUPPORTED_KINDS = ("Service", "SLI", "SLO", "DataSource")
REFUSED_KINDS = {
    "AlertPolicy": "alert policies are not supported: every SLO is alerted on with "
    "multi-window, multi-burn-rate rules; remove this document",
    "AlertCondition": "alert conditions are not supported: every SLO is alerted on with "
    "multi-window, multi-burn-rate rules; remove this document",
    "AlertNotificationTarget": "notification targets are not supported here; remove this document",
}
PROMETHEUS = "Prometheus"
# Calendar windows have no fixed length; `window_days` is then only nominal.
NOMINAL_CALENDAR_DAYS = {"month": 30, "quarter": 90}
CALENDAR_DURATIONS = {"1M": "month", "1Q": "quarter"}
EXPORT_CALENDAR_START = "2020-01-01 00:00:00"  # the start of a month and of a quarter
MAX_NAME_LENGTH = 63  # RFC 1123 labels, which every OpenSLO implementation accepts

PathPart = str | int
FieldPath = tuple[PathPart, ...]

_SLI_ADAPTER: TypeAdapter[SLI] = TypeAdapter(SLI)
_NAME: TypeAdapter[str] = TypeAdapter(Name)
_LONG_TEXT: TypeAdapter[str] = TypeAdapter(LongText)
_OBJECTIVE: TypeAdapter[float] = TypeAdapter(Objective)
_WINDOW_DAYS: TypeAdapter[int] = TypeAdapter(WindowDays)
_TIME_ZONE: TypeAdapter[str] = TypeAdapter(TimeZone)
_DURATION = re.compile(r"^([1-9][0-9]{0,6})([mhdwMQY])$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)
_MAX_LATENCY_THRESHOLD = 86_400.0


class OpenSLOSyntaxError(ValueError):
    """The upload is not YAML."""


@dataclass(frozen=True)
class Document:
    """One YAML document of an upload, as parsed; `index` counts from 0."""

    index: int
    data: Any


@dataclass(frozen=True)
class ConversionError:
    """Why one field of one document cannot be honoured."""

    document: int
    kind: str | None
    name: str | None
    path: FieldPath
    message: str

    @property
    def field(self) -> str:
        """Dotted path within the upload, e.g. `documents.2.spec.budgetingMethod`."""
        return ".".join(str(part) for part in ("documents", self.document, *self.path))

    @property
    def subject(self) -> str:
        """The document, e.g. `SLO "api-availability"`."""
        kind = self.kind or "document"
        if self.name:
            return f"{kind} {json.dumps(self.name, ensure_ascii=False)}"
        return f"{kind} #{self.document + 1}"

    def __str__(self) -> str:
        where = render_path(self.path)
        return (
            f"{self.subject}: {where}: {self.message}"
            if where
            else f"{self.subject}: {self.message}"
        )


@dataclass(frozen=True)
class ServiceDefinition:
    """A catalog service to ensure. `description` None: not given, left as it is."""

    name: str
    description: str | None = None


@dataclass(frozen=True)
class SLODefinition:
    """An SLO as `SLOCreate` takes it, with the service's name instead of its id."""

    service: str
    name: str
    objective: float
    window_days: int
    calendar_period: Literal["month", "quarter"] | None
    timezone: str
    sli: dict[str, Any]
    description: str | None
    document: int


@dataclass(frozen=True)
class IgnoredDocument:
    """A document accepted but not stored, and why."""

    document: int
    kind: str
    name: str
    reason: str


@dataclass
class ImportPlan:
    """What an upload asks for; nothing may be written while `errors` is not empty."""

    services: list[ServiceDefinition] = field(default_factory=list)
    slos: list[SLODefinition] = field(default_factory=list)
    ignored: list[IgnoredDocument] = field(default_factory=list)
    errors: list[ConversionError] = field(default_factory=list)


def render_path(path: FieldPath) -> str:
    """`("spec", "timeWindow", 0, "duration")` → `spec.timeWindow[0].duration`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# --------------------------------------------------------------------------- parsing


def parse_documents(yaml_text: str) -> list[Document]:
    """Every document of a multi-document YAML stream; empty documents are skipped.

    Only the YAML is checked here (`OpenSLOSyntaxError`); `to_definitions` checks the
    contents, so that one answer can list every problem of the upload.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents: list[Document] = []
    try:
        for index, data in enumerate(yaml.load_all(yaml_text, Loader=loader)):
            if data is not None:
                documents.append(Document(index=index, data=data))
    except yaml.YAMLError as exc:
        raise OpenSLOSyntaxError(f"the upload is not valid YAML: {exc}") from None
    except RecursionError:
        raise OpenSLOSyntaxError("the upload is not valid YAML: nested too deeply") from None
    return documents


# --------------------------------------------------------------------------- import


class _Context:
    """Errors of one document, each with its path."""

    def __init__(self, plan: ImportPlan, document: Document) -> None:
        self.plan = plan
        self.document = document
        self.kind: str | None = None
        self.name: str | None = None
        self.failed = False

    def error(self, path: FieldPath, message: str) -> None:
        self.failed = True
        self.plan.errors.append(
            ConversionError(self.document.index, self.kind, self.name, path, message)
        )

    def mapping(self, value: Any, path: FieldPath) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, not {_type_name(value)}")
            return None
        return value

    def known_keys(self, mapping: dict[Any, Any], path: FieldPath, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in mapping:
            if key not in allowed:
                self.error(
                    (*path, str(key)),
                    "unknown field; expected one of " + ", ".join(sorted(allowed)),
                )

    def string(
        self, mapping: dict[str, Any], key: str, path: FieldPath, *, required: bool
    ) -> str | None:
        value = mapping.get(key)
        if value is None:
            if required:
                self.error((*path, key), "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.error((*path, key), "must be a non-empty string")
            return None
        return value.strip()

    def validated(self, adapter: TypeAdapter[Any], value: Any, path: FieldPath) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            for error in exc.errors():
                self.error(path, _pydantic_message(error))
            return None


@dataclass
class _Named:
    """A Service, SLI or DataSource document, by `metadata.name`."""

    context: _Context
    spec: dict[str, Any]
    display_name: str | None
    referenced: bool = False
    sli: dict[str, Any] | None = None
    converted: bool = False


def to_definitions(documents: Sequence[Document]) -> ImportPlan:
    """What the documents ask for, or every reason they cannot be honoured (`errors`)."""
    plan = ImportPlan()
    if not documents:
        plan.errors.append(
            ConversionError(0, None, None, (), "the upload contains no OpenSLO documents")
        )
        return plan

    named: dict[str, dict[str, _Named]] = {kind: {} for kind in SUPPORTED_KINDS}
    slo_documents: list[tuple[_Context, dict[str, Any], str | None]] = []
    for document in documents:
        envelope = _envelope(plan, document)
        if envelope is None:
            continue
        context, spec, display_name = envelope
        assert context.kind is not None
        assert context.name is not None
        if context.kind == "SLO":
            slo_documents.append((context, spec, display_name))
            continue
        if context.name in named[context.kind]:
            context.error(
                ("metadata", "name"), f"another {context.kind} of this upload has this name"
            )
            continue
        named[context.kind][context.name] = _Named(context, spec, display_name)

    data_sources = _data_sources(plan, named["DataSource"])
    services = _services(named["Service"])
    slis = named["SLI"]

    seen: set[tuple[str, str]] = set()
    for context, spec, display_name in slo_documents:
        definition = _slo(context, spec, display_name, services, slis, data_sources)
        if definition is None:
            continue
        key = (definition.service, definition.name)
        if key in seen:
            context.error(
                ("metadata", "displayName" if display_name else "name"),
                f"another SLO of this upload has the name {definition.name!r} "
                f"for service {definition.service!r}",
            )
            continue
        seen.add(key)
        plan.slos.append(definition)

    wanted: dict[str, ServiceDefinition] = {}
    for name, service in named["Service"].items():
        catalog_entry = services[name]
        if catalog_entry is None:
            continue
        if catalog_entry.name in wanted:
            service.context.error(
                ("metadata", "displayName" if service.display_name else "name"),
                f"another Service of this upload is named {catalog_entry.name!r}",
            )
            continue
        wanted[catalog_entry.name] = catalog_entry
    for slo in plan.slos:
        wanted.setdefault(slo.service, ServiceDefinition(name=slo.service))
    plan.services = list(wanted.values())

    for name, sli in slis.items():
        if not sli.referenced and not sli.context.failed:
            plan.ignored.append(
                IgnoredDocument(
                    sli.context.document.index,
                    "SLI",
                    name,
                    "no SLO of this upload refers to it; SLIs are stored only as part of an SLO",
                )
            )
    for name, source in named["DataSource"].items():
        if not source.context.failed:
            plan.ignored.append(
                IgnoredDocument(
                    source.context.document.index,
                    "DataSource",
                    name,
                    "its connection details are not used: SLIs are always read from the "
                    "Prometheus at PROMETHEUS_URL",
                )
            )
    plan.ignored.sort(key=lambda item: item.document)
    plan.errors.sort(key=lambda error: error.document)
    return plan


def _envelope(
    plan: ImportPlan, document: Document
) -> tuple[_Context, dict[str, Any], str | None] | None:
    """Check apiVersion, kind and metadata; the spec and display name of a supported kind."""
    context = _Context(plan, document)
    data = document.data
    if not isinstance(data, dict):
        context.error(
            (),
            "a document must be a mapping with apiVersion, kind, metadata and spec, "
            f"not {_type_name(data)}",
        )
        return None
    kind = data.get("kind")
    context.kind = kind if isinstance(kind, str) and kind else None
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        context.name = metadata["name"].strip() or None

    api_version = data.get("apiVersion")
    if api_version is None:
        context.error(("apiVersion",), f"is required: {API_VERSION}")
    elif api_version != API_VERSION:
        context.error(
            ("apiVersion",), f"{json.dumps(api_version)} is not supported; use {API_VERSION}"
        )
    if context.kind is None:
        context.error(("kind",), "is required: one of " + ", ".join(SUPPORTED_KINDS))
    elif context.kind in REFUSED_KINDS:
        context.error(("kind",), f"{context.kind}: {REFUSED_KINDS[context.kind]}")
    elif context.kind not in SUPPORTED_KINDS:
        context.error(
            ("kind",),
            f"{context.kind} is not supported; supported kinds: " + ", ".join(SUPPORTED_KINDS),
        )
    context.known_keys(data, (), ("apiVersion", "kind", "metadata", "spec"))

    display_name: str | None = None
    if metadata is None:
        context.error(("metadata",), "is required, with a name")
    elif context.mapping(metadata, ("metadata",)) is not None:
        assert isinstance(metadata, dict)
        context.string(metadata, "name", ("metadata",), required=True)
        display_name = context.string(metadata, "displayName", ("metadata",), required=False)
    raw_spec = data.get("spec")
    spec = context.mapping({} if raw_spec is None else raw_spec, ("spec",))
    if context.failed or spec is None:
        return None
    return context, spec, display_name


def _data_sources(plan: ImportPlan, documents: dict[str, _Named]) -> dict[str, bool]:
    """Whether each DataSource (by name) is a Prometheus one; errors for the others."""
    kinds: dict[str, bool] = {}
    for name, source in documents.items():
        context, spec = source.context, source.spec
        context.known_keys(spec, ("spec",), ("description", "type", "connectionDetails"))
        source_type = context.string(spec, "type", ("spec",), required=True)
        if source_type is not None and source_type.lower() != PROMETHEUS.lower():
            context.error(
                ("spec", "type"),
                f"{source_type} is not supported; only {PROMETHEUS} data sources are",
            )
        kinds[name] = not context.failed
    return kinds


def _services(documents: dict[str, _Named]) -> dict[str, ServiceDefinition | None]:
    """Each Service document (by metadata.name) as a catalog service, or None if invalid."""
    services: dict[str, ServiceDefinition | None] = {}
    for name, document in documents.items():
        context, spec = document.context, document.spec
        context.known_keys(spec, ("spec",), ("description",))
        name_path = ("metadata", "displayName" if document.display_name else "name")
        catalog_name = context.validated(_NAME, document.display_name or name, name_path)
        description = None
        if spec.get("description") is not None:
            description = context.validated(
                _LONG_TEXT, spec["description"], ("spec", "description")
            )
        services[name] = None if context.failed else ServiceDefinition(catalog_name, description)
    return services


def _slo(
    context: _Context,
    spec: dict[str, Any],
    display_name: str | None,
    services: dict[str, ServiceDefinition | None],
    slis: dict[str, _Named],
    data_sources: dict[str, bool],
) -> SLODefinition | None:
    context.known_keys(
        spec,
        ("spec",),
        (
            "description",
            "service",
            "indicator",
            "indicatorRef",
            "timeWindow",
            "budgetingMethod",
            "objectives",
            "alertPolicies",
        ),
    )
    assert context.name is not None
    name_path = ("metadata", "displayName" if display_name else "name")
    name = context.validated(_NAME, display_name or context.name, name_path)

    service_name: str | None = None
    service_ref = context.string(spec, "service", ("spec",), required=True)
    if service_ref is not None:
        if service_ref in services:
            service = services[service_ref]
            service_name = service.name if service is not None else None
        else:
            service_name = context.validated(_NAME, service_ref, ("spec", "service"))

    description = None
    if spec.get("description") is not None:
        description = context.validated(_LONG_TEXT, spec["description"], ("spec", "description"))

    method = spec.get("budgetingMethod")
    if method is None:
        context.error(("spec", "budgetingMethod"), "is required; use Occurrences")
    elif method in ("Timeslices", "RatioTimeslices"):
        context.error(
            ("spec", "budgetingMethod"),
            f"{method} is not supported; use Occurrences (good and bad events counted "
            "over the whole window)",
        )
    elif method != "Occurrences":
        context.error(("spec", "budgetingMethod"), f"{method!r} is not supported; use Occurrences")

    if spec.get("alertPolicies"):
        context.error(
            ("spec", "alertPolicies"),
            "alert policies are not supported: every SLO is alerted on with multi-window, "
            "multi-burn-rate rules; remove spec.alertPolicies",
        )

    sli = _slo_indicator(context, spec, slis, data_sources)
    window = _time_window(context, spec.get("timeWindow"))
    objective = _objective(context, spec.get("objectives"))

    if context.failed or name is None or service_name is None or sli is None:
        return None
    if window is None or objective is None:
        return None
    window_days, calendar_period, timezone = window
    return SLODefinition(
        service=service_name,
        name=name,
        objective=objective,
        window_days=window_days,
        calendar_period=calendar_period,
        timezone=timezone,
        sli=sli,
        description=description,
        document=context.document.index,
    )


def _slo_indicator(
    context: _Context,
    spec: dict[str, Any],
    slis: dict[str, _Named],
    data_sources: dict[str, bool],
) -> dict[str, Any] | None:
    inline, ref = spec.get("indicator"), spec.get("indicatorRef")
    if inline is not None and ref is not None:
        context.error(("spec", "indicatorRef"), "give indicator or indicatorRef, not both")
        return None
    if inline is None and ref is None:
        context.error(("spec", "indicator"), "is required (or indicatorRef)")
        return None
    if inline is not None:
        path: FieldPath = ("spec", "indicator")
        indicator = context.mapping(inline, path)
        if indicator is None:
            return None
        context.known_keys(indicator, path, ("apiVersion", "kind", "metadata", "spec"))
        if indicator.get("kind", "SLI") != "SLI":
            context.error((*path, "kind"), "must be SLI")
        return _sli(context, indicator.get("spec"), (*path, "spec"), data_sources)

    if not isinstance(ref, str) or ref.strip() not in slis:
        context.error(
            ("spec", "indicatorRef"),
            f"no SLI named {json.dumps(ref)} in this upload; add its SLI document or "
            "give the indicator inline",
        )
        return None
    referenced = slis[ref.strip()]
    referenced.referenced = True
    if not referenced.converted:  # once, with errors on the SLI document itself
        referenced.converted = True
        referenced.sli = _sli(referenced.context, referenced.spec, ("spec",), data_sources)
    return referenced.sli


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


def _shift(number: float, places: int) -> float:
    """`number` times 10**places, computed in decimal: 0.999 → 99.9 (not 99.89999999999999)."""
    return float(Decimal(repr(float(number))).scaleb(places))


# ---------------------------------------------------------------------------- selectors


def _matchers(selector: str) -> tuple[str, list[tuple[str, str, str]]] | None:
    """The metric name and (label, op, value) matchers, or None for `or` selectors."""
    parsed = parse_selector(selector, "selector")
    if parsed.matchers.or_matchers:
        return None
    return str(parsed.name), [(m.name, _op(m.op), m.value) for m in parsed.matchers.matchers]


def _op(op: promql_parser.MatchOp) -> str:
    # MatchOp is not hashable, so it cannot key a dict.
    return next(text for candidate, text in _OPS if candidate == op)


def _quote(value: str) -> str:
    escaped = []
    for char in value:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20:
            escaped.append(f"\\x{ord(char):02x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def render_selector(name: str, matchers: Sequence[tuple[str, str, str]]) -> str:
    """A selector such as `name{a="b",c=~"d"}`, with values escaped for PromQL."""
    if not matchers:
        return name
    return name + "{" + ",".join(f"{label}{op}{_quote(v)}" for label, op, v in matchers) + "}"


def _le_matcher(threshold_seconds: float) -> tuple[str, str, str]:
    """The `le` matcher the engine uses for a latency threshold (promql.le_matcher)."""
    python = repr(float(threshold_seconds))
    spellings = list(dict.fromkeys([python.removesuffix(".0"), python]))
    if len(spellings) == 1:
        return ("le", "=", spellings[0])
    return ("le", "=~", "|".join(spelling.replace(".", "\\.") for spelling in spellings))


def _latency_sli(good: str, total: str) -> dict[str, Any] | None:
    """A latency SLI when `good` is `h_bucket{…,le="x"}` and `total` is `h_count{…}`."""
    good_parts, total_parts = _matchers(good), _matchers(total)
    if good_parts is None or total_parts is None:
        return None
    (good_name, good_matchers), (total_name, total_matchers) = good_parts, total_parts
    if not good_name.endswith("_bucket"):
        return None
    if total_name != good_name.removesuffix("_bucket") + "_count":
        return None
    le = [matcher for matcher in good_matchers if matcher[0] == "le"]
    others = [matcher for matcher in good_matchers if matcher[0] != "le"]
    if len(le) != 1 or sorted(others) != sorted(total_matchers):
        return None
    threshold = _threshold(le[0])
    if threshold is None:
        return None
    histogram = render_selector(good_name, others)
    if _matchers(histogram) != (good_name, others):  # the rendering must mean the same
        return None
    return {"kind": "latency", "histogram": histogram, "threshold_seconds": threshold}


def _threshold(matcher: tuple[str, str, str]) -> float | None:
    _, op, value = matcher
    first = value.split("|", 1)[0].replace("\\.", ".") if op == "=~" else value
    try:
        threshold = float(first)
    except ValueError:
        return None
    if not 0 < threshold <= _MAX_LATENCY_THRESHOLD:  # also refuses nan and inf
        return None
    if op == "=" or (op == "=~" and _le_matcher(threshold) == matcher):
        return threshold
    return None


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


def _normalised_sli(sli: dict[str, Any]) -> dict[str, Any]:
    """The SLI as the API stores it (validated, without unset optional fields)."""
    dumped: dict[str, Any] = _SLI_ADAPTER.dump_python(
        _SLI_ADAPTER.validate_python(sli), exclude_none=True
    )
    return dumped


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


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _pydantic_message(error: Any) -> str:
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")

"""OpenSLO documents to an `ImportPlan` (`to_definitions`): each document's envelope,
DataSource, Service and SLO documents, and references between them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from reliability_studio.api.fields import LongText, Name
from reliability_studio.slos.openslo.documents import (
    API_VERSION,
    PROMETHEUS,
    REFUSED_KINDS,
    SUPPORTED_KINDS,
    ConversionError,
    Document,
    FieldPath,
)
from reliability_studio.slos.openslo.plan import (
    IgnoredDocument,
    ImportPlan,
    ServiceDefinition,
    SLODefinition,
    _Context,
    _Named,
    _type_name,
)
from reliability_studio.slos.openslo.validators import _objective, _sli, _time_window

_NAME: TypeAdapter[str] = TypeAdapter(Name)
_LONG_TEXT: TypeAdapter[str] = TypeAdapter(LongText)


# --------------------------------------------------------------------------- import


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

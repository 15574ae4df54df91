"""Where a service's telemetry lives: its Prometheus series, Loki streams, Tempo traces and
Kubernetes workload. Every binding is optional; what is left out is derived from the
service's name, following the common conventions (a scrape job named after the service,
Loki 3's automatic `service_name` label, the OpenTelemetry `service.name`, a Deployment of
the same name), so that evidence gathering works for a service nobody configured.
"""

from __future__ import annotations

import re
from typing import Annotated

import promql_parser
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from reliability_studio.api.fields import NoNul
from reliability_studio.slos.promql import quote

DEFAULT_NAMESPACE = "default"
# A Kubernetes object name or namespace (RFC 1123 DNS label/subdomain).
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


def _label_selector(value: str) -> str:
    """A `{label="value", ...}` selector, as Prometheus and Loki both write stream selectors."""
    try:
        parsed = promql_parser.parse(value)
    except ValueError as exc:
        raise ValueError(f'must be a label selector such as {{job="payment"}}: {exc}') from None
    if not isinstance(parsed, promql_parser.VectorSelector) or parsed.name:
        raise ValueError('must be only label matchers in braces, such as {job="payment"}')
    if parsed.matchers.or_matchers:
        raise ValueError("must not join label matchers with `or`; use a regex (=~)")
    return value.strip()


def _promql(value: str) -> str:
    try:
        promql_parser.parse(value)
    except ValueError as exc:
        raise ValueError(f"is not valid PromQL: {exc}") from None
    return value.strip()


Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), NoNul
]
LabelSelector = Annotated[Text, AfterValidator(_label_selector)]
PromQLQuery = Annotated[Text, AfterValidator(_promql)]
K8sName = Annotated[str, StringConstraints(pattern=K8S_NAME_PATTERN, max_length=253)]


class PrometheusBinding(BaseModel):
    """The service's series, and optional named queries for its golden signals."""

    model_config = ConfigDict(extra="forbid")

    selector: LabelSelector | None = Field(default=None, examples=['{job="payment"}'])
    error_ratio_query: PromQLQuery | None = None
    latency_query: PromQLQuery | None = None
    saturation_query: PromQLQuery | None = None


class LokiBinding(BaseModel):
    """The service's log streams."""

    model_config = ConfigDict(extra="forbid")

    selector: LabelSelector | None = Field(default=None, examples=['{app="payment"}'])


class TempoBinding(BaseModel):
    """The service's traces, by OpenTelemetry `service.name`."""

    model_config = ConfigDict(extra="forbid")

    service_name: Text | None = None


class KubernetesBinding(BaseModel):
    """The service's workload: a Deployment in a namespace."""

    model_config = ConfigDict(extra="forbid")

    namespace: K8sName | None = None
    workload: K8sName | None = None


class TelemetryBindings(BaseModel):
    """What a user sets; every part may be left out."""

    model_config = ConfigDict(extra="forbid")

    prometheus: PrometheusBinding | None = None
    loki: LokiBinding | None = None
    tempo: TempoBinding | None = None
    kubernetes: KubernetesBinding | None = None


class EffectiveTelemetry(BaseModel):
    """The bindings evidence gathering uses: what was set, defaults for the rest."""

    prometheus: PrometheusBinding
    loki: LokiBinding
    tempo: TempoBinding
    kubernetes: KubernetesBinding


def effective_telemetry(service_name: str, stored: dict[str, object] | None) -> EffectiveTelemetry:
    """The bindings of a service named `service_name`, with defaults for what is unset."""
    bindings = TelemetryBindings.model_validate(stored or {})
    prometheus = bindings.prometheus or PrometheusBinding()
    loki = bindings.loki or LokiBinding()
    tempo = bindings.tempo or TempoBinding()
    kubernetes = bindings.kubernetes or KubernetesBinding()
    return EffectiveTelemetry(
        prometheus=prometheus.model_copy(
            update={"selector": prometheus.selector or "{job=" + quote(service_name) + "}"}
        ),
        loki=loki.model_copy(
            update={"selector": loki.selector or "{service_name=" + quote(service_name) + "}"}
        ),
        tempo=tempo.model_copy(update={"service_name": tempo.service_name or service_name}),
        kubernetes=kubernetes.model_copy(
            update={
                "namespace": kubernetes.namespace or DEFAULT_NAMESPACE,
                "workload": kubernetes.workload or _k8s_name(service_name),
            }
        ),
    )


def _k8s_name(service_name: str) -> str | None:
    """The service's name as a Kubernetes object name, if it can be one."""
    candidate = service_name.strip().lower().replace("_", "-").replace(" ", "-")
    return candidate if re.fullmatch(K8S_NAME_PATTERN, candidate) else None

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

from reliability_studio.slos.openslo.documents import (
    ConversionError,
    OpenSLOSyntaxError,
    parse_documents,
)
from reliability_studio.slos.openslo.exporting import (
    Export,
    ServiceRecord,
    SLORecord,
    build_export,
    to_documents,
)
from reliability_studio.slos.openslo.importing import to_definitions
from reliability_studio.slos.openslo.plan import ImportPlan, ServiceDefinition, SLODefinition

__all__ = [
    "ConversionError",
    "Export",
    "ImportPlan",
    "OpenSLOSyntaxError",
    "SLODefinition",
    "SLORecord",
    "ServiceDefinition",
    "ServiceRecord",
    "build_export",
    "parse_documents",
    "to_definitions",
    "to_documents",
]

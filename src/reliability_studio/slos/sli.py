"""SLI definitions: what counts as a good or a bad event, as PromQL. Pure, no I/O.

Four kinds, chosen by `kind`:

- `ratio`: counters of bad (`errors`) or good (`good`) events and of all events (`total`).
- `latency`: a histogram's `_bucket` series; good events fall at or under `threshold_seconds`.
- `bool_gauge`: a 0/1 gauge such as `probe_success`; every sample is one event.
- `query`: any PromQL giving the error ratio over `{{window}}`, for everything else.

Selectors are checked with a real PromQL parser here; the SLO service also asks Prometheus,
when it can be reached, whether they select anything.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import promql_parser
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from reliability_studio.api.fields import NoNul

WINDOW_PLACEHOLDER = "{{window}}"
_SAMPLE_WINDOW = "5m"

# NoNul: the PromQL parser takes NUL inside a quoted label value, and PostgreSQL cannot store it.
PromQL = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), NoNul
]


def _selector(value: str) -> str:
    parse_selector(value, "selector")
    return value


def _bucket_selector(value: str) -> str:
    parsed = parse_selector(value, "histogram")
    if not parsed.name or not parsed.name.endswith("_bucket"):
        raise ValueError("histogram must select a metric whose name ends in _bucket")
    if any(matcher.name == "le" for matcher in parsed.matchers.matchers):
        raise ValueError("histogram must not match on le; threshold_seconds chooses it")
    return value


Selector = Annotated[PromQL, AfterValidator(_selector)]
BucketSelector = Annotated[PromQL, AfterValidator(_bucket_selector)]


def parse_selector(selector: str, field: str) -> promql_parser.VectorSelector:
    """The parsed vector selector, or ValueError naming what is wrong with it."""
    try:
        parsed = promql_parser.parse(selector)
    except ValueError as exc:
        raise ValueError(f"{field} is not valid PromQL: {exc}") from None
    if not isinstance(parsed, promql_parser.VectorSelector):
        raise ValueError(
            f"{field} must be a plain series selector such as "
            f'http_requests_total{{job="api"}}, not an expression; the engine adds '
            "increase() and sum() itself"
        )
    if parsed.offset is not None or parsed.at is not None:
        raise ValueError(f"{field} must not use offset or @")
    if parsed.matchers.or_matchers:
        raise ValueError(f"{field} must not join label matchers with `or`; use a regex (=~)")
    if not parsed.name:
        raise ValueError(f"{field} must name a metric")
    return parsed


class RatioSLI(BaseModel):
    """Bad (or good) events over all events, from counters."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ratio"]
    errors: Selector | None = Field(
        default=None,
        description='Counter of bad events, e.g. http_requests_total{job="api",code=~"5.."}.',
    )
    good: Selector | None = Field(default=None, description="Counter of good events, instead.")
    total: Selector = Field(description="Counter of all events.")

    @model_validator(mode="after")
    def _one_of_errors_or_good(self) -> RatioSLI:
        if (self.errors is None) == (self.good is None):
            raise ValueError("give exactly one of errors or good")
        return self


class LatencySLI(BaseModel):
    """Requests served within `threshold_seconds`, from a histogram."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["latency"]
    histogram: BucketSelector = Field(
        description='The _bucket series, e.g. http_request_duration_seconds_bucket{job="api"}.'
    )
    threshold_seconds: float = Field(gt=0, le=86_400, allow_inf_nan=False)
    le: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[0-9.eE+-]+$",
        description="The bucket's `le` label exactly as the series write it (e.g. `0.30`). "
        "Found in Prometheus when the SLO is saved; the usual spellings are tried otherwise.",
    )

    @model_serializer(mode="wrap")
    def _without_unknown_le(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Stored and shown as sent: `le` appears only once it is known.
        data: dict[str, Any] = handler(self)
        if data.get("le") is None:
            data.pop("le", None)
        return data

    def histogram_name_without_suffix(self) -> str:
        """The histogram's base name: `x_bucket` → `x` (its `_count` is `x_count`)."""
        return str(parse_selector(self.histogram, "histogram").name).removesuffix("_bucket")


class BoolGaugeSLI(BaseModel):
    """A 0/1 gauge (1 = good), each sample one event, e.g. probe_success."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["bool_gauge"]
    metric: Selector = Field(description='The gauge, e.g. probe_success{job="blackbox"}.')


class QuerySLI(BaseModel):
    """Any PromQL that gives the error ratio (0..1) over `{{window}}`."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["query"]
    error_ratio_query: PromQL = Field(
        description="PromQL with {{window}} where the window goes, e.g. "
        "sum(rate(errors[{{window}}])) / sum(rate(requests[{{window}}]))."
    )

    @model_validator(mode="after")
    def _valid_promql_with_window(self) -> QuerySLI:
        if WINDOW_PLACEHOLDER not in self.error_ratio_query:
            raise ValueError("error_ratio_query must contain {{window}}")
        try:
            promql_parser.parse(self.error_ratio_query.replace(WINDOW_PLACEHOLDER, _SAMPLE_WINDOW))
        except ValueError as exc:
            raise ValueError(f"error_ratio_query is not valid PromQL: {exc}") from None
        return self


SLI = Annotated[RatioSLI | LatencySLI | BoolGaugeSLI | QuerySLI, Field(discriminator="kind")]

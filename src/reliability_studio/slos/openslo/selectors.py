"""Prometheus selectors and SLIs in the forms that import and export share: a
`_bucket` over `_count` ratio recognised as a latency SLI, and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import promql_parser
from pydantic import TypeAdapter

from reliability_studio.slos.sli import SLI, parse_selector

_SLI_ADAPTER: TypeAdapter[SLI] = TypeAdapter(SLI)


_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)
_MAX_LATENCY_THRESHOLD = 86_400.0


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


def _normalised_sli(sli: dict[str, Any]) -> dict[str, Any]:
    """The SLI as the API stores it (validated, without unset optional fields)."""
    dumped: dict[str, Any] = _SLI_ADAPTER.dump_python(
        _SLI_ADAPTER.validate_python(sli), exclude_none=True
    )
    return dumped

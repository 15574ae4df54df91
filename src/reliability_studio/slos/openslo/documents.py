"""The OpenSLO format as uploads give it: constants, YAML parsing, the errors that refuse
a document (with the path of the field), and helpers both directions share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

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


def _shift(number: float, places: int) -> float:
    """`number` times 10**places, computed in decimal: 0.999 → 99.9 (not 99.89999999999999)."""
    return float(Decimal(repr(float(number))).scaleb(places))

"""What an import asks for (`ImportPlan`), and the per-document error collector that the
import validators report to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from reliability_studio.slos.openslo.documents import ConversionError, Document, FieldPath


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

"""Field types shared by request schemas: trimmed, bounded, and free of NUL bytes.

PostgreSQL cannot store NUL in text, so it is refused at the edge with a clear 422
instead of failing deep in the driver.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    _check_nested(value, depth=1)  # first: the encoder itself fails on very deep nesting
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
        raise ValueError("must hold only numbers that fit in 64 bits") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes of JSON")
    return value


def _in_utc(value: datetime) -> datetime:
    """The same instant in UTC, as it is stored; refused when UTC has no such date."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a time between years 1 and 9999 once converted to UTC") from None


def _check_nested(value: object, depth: int) -> None:
    """Refuse NUL characters, non-finite numbers, and nesting deeper than MAX_METADATA_DEPTH."""
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"must not nest deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, float) and not math.isfinite(value):
        # JSON has no Infinity or NaN (Python's parser takes them, and 1e400 overflows to
        # inf); the encoder would store them as null, silently changing the data.
        raise ValueError("must hold only finite numbers")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _check_nested(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_nested(item, depth + 1)


NoNul = AfterValidator(_no_nul)


def _trimmed(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Name = Annotated[str, _trimmed(1, 200), NoNul]
Source = Annotated[str, _trimmed(1, 100), NoNul]
Title = Annotated[str, _trimmed(1, 500), NoNul]
Person = Annotated[str, _trimmed(1, 200), NoNul]
LongText = Annotated[str, _trimmed(0, 50_000), NoNul]
JSONObject = Annotated[dict[str, Any], AfterValidator(_bounded_json)]


def _not_a_number(value: object) -> object:
    """Refuse a number, or a string of one, where a time is expected: pydantic would read it
    as Unix seconds, so `?created_before=0.5` or `"ends_at": -1` meant a time near 1970
    instead of a 422, against the documented `format: date-time` (found by fuzzing)."""
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2024-05-01T12:00:00Z")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# An RFC 3339 time with an offset, normalised to UTC at the edge. Without the check,
# "0001-01-01T00:00:00+01:00" passes validation and fails when converted for storage.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]

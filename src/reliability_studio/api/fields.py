"""Field types shared by request schemas: trimmed, bounded, and free of NUL bytes.

PostgreSQL cannot store NUL in text, so it is refused at the edge with a clear 422
instead of failing deep in the driver.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, StringConstraints

MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    encoded = orjson.dumps(value)
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes of JSON")
    _check_nested(value, depth=1)
    return value


def _check_nested(value: object, depth: int) -> None:
    """Refuse NUL characters anywhere, and nesting deeper than MAX_METADATA_DEPTH."""
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"must not nest deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        _no_nul(value)
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

"""JSON answers encoded once by orjson, for read paths that build their bodies from rows."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import Response

JSON_OPTIONS = orjson.OPT_UTC_Z  # "…Z" for UTC, as pydantic writes it


def _other(value: Any) -> str:
    """What orjson does not know: asyncpg's own UUID class, written as pydantic would."""
    if isinstance(value, uuid.UUID) or type(value).__name__ == "UUID":
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_response(content: Any, headers: dict[str, str] | None = None) -> Response:
    """`content` as a JSON response, encoded once by orjson, in the JSON pydantic would write."""
    return Response(
        orjson.dumps(content, default=_other, option=JSON_OPTIONS),
        media_type="application/json",
        headers=headers,
    )

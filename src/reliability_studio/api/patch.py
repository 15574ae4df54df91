"""PATCH semantics shared by every resource: send only what changes, null clears."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from reliability_studio.api.problems import UnprocessableError


def patch_changes(body: BaseModel, *not_nullable: str) -> dict[str, Any]:
    """The fields the client sent, with their values; 422 when a required one is null."""
    changes = body.model_dump(exclude_unset=True)
    for field in not_nullable:
        if field in changes and changes[field] is None:
            raise UnprocessableError(f"{field} cannot be null", field=field)
    return changes

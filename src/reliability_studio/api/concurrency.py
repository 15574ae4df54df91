"""Optimistic concurrency over HTTP: `ETag` out, `If-Match` in (RFC 9110, section 13).

Every resource that can be changed or deleted has a `version` (`db.base.Versioned`); its
`ETag` is that version quoted (`"3"`), sent on the 201 of `POST`, on `GET` of the resource
and on the 200 of `PATCH`, and also shown in the body (`version`) for list consumers.

`PATCH` and `DELETE` take an optional `If-Match`. The route first locks the row
(`lock_for_write`: `SELECT ... FOR NO KEY UPDATE` on PostgreSQL; SQLite transactions begin
`IMMEDIATE`, so they hold the write lock already) and compares its version with the
header, then lets the service do its work in the same transaction. The lock is held until
the commit, so the comparison and the write are one atomic step: of N concurrent requests
sending the same `If-Match`, exactly one finds its version current. The mapper's version
check (`UPDATE ... WHERE version = :loaded`) backs this up should any writer skip the lock.

Without `If-Match`, the write happens on whatever is current: the last write wins, as
documented, and it still waits for the lock, so concurrent writers never interleave inside
one request. The pure parts (parsing, comparison) are in `etags.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Header, Request, Response
from pydantic import Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.etags import (
    Condition,
    MalformedConditionError,
    allows,
    etag_of,
    parse_condition,
)
from reliability_studio.api.problems import (
    PROBLEM_MEDIA_TYPE,
    BadRequestError,
    FieldError,
    PreconditionFailedError,
    Problem,
)
from reliability_studio.db.base import Versioned

IF_MATCH = "If-Match"
IF_MATCH_DESCRIPTION = (
    'Only apply the change if the resource is still at this version: its `ETag`, e.g. `"3"` '
    "(several may be listed; `*` matches any version). A stale version answers 412 and "
    "changes nothing. Without it, the last write wins."
)

# The `version` member of every versioned resource's API shape.
ResourceVersion = Annotated[
    int,
    Field(
        ge=1,
        description='Moves on every change; the `ETag` is this number quoted (`"3"`). '
        "Send it in `If-Match` to change or delete exactly this version.",
    ),
]


class HasVersion(Protocol):
    """Anything that carries a resource's version: a model or an API shape."""

    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=HasVersion)
M = TypeVar("M", bound=Versioned)


async def if_match(
    request: Request,
    if_match: Annotated[
        str | None, Header(alias=IF_MATCH, description=IF_MATCH_DESCRIPTION, examples=['"3"'])
    ] = None,
) -> Condition | None:
    """The request's `If-Match`, parsed; None when absent. 400 naming the header if malformed.

    Every field line counts (a list may be split over several), hence the raw headers; the
    parameter is there for the OpenAPI description.
    """
    values = request.headers.getlist(IF_MATCH)
    if not values:
        return None
    try:
        return parse_condition(values, IF_MATCH)
    except MalformedConditionError as exc:
        raise BadRequestError(
            str(exc), errors=[FieldError(field=IF_MATCH, location="header", message=str(exc))]
        ) from None


IfMatch = Annotated[Condition | None, Depends(if_match)]


async def lock_for_write(
    session: AsyncSession,
    condition: Condition | None,
    model: type[M],
    *criteria: ColumnElement[bool],
    what: str,
) -> M | None:
    """Lock the row of `model` that `criteria` select, fresh from the database, and check
    `If-Match` against it (412 if it does not hold). None when there is no such row: the
    service then answers 404 in its own words, as RFC 9110 13.2.1 wants (a precondition
    is not evaluated when the answer without it would not be a success).

    Call it before the service touches the row, in the same transaction. Loading with
    `populate_existing` refreshes a copy this session may already hold from an earlier
    transaction, so the service then works on the locked, current row.
    """
    # FOR NO KEY UPDATE (key_share): what PostgreSQL's own UPDATE takes. It excludes other
    # writers of the row but not inserts that merely refer to it (a timeline event, a task
    # or a link checking its foreign key), which plain FOR UPDATE would make wait.
    row = await session.scalar(
        select(model)
        .where(*criteria)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if row is None:
        return None
    require_version(condition, row.version, what)
    return row


def require_version(condition: Condition | None, version: int, what: str) -> None:
    """412 unless `If-Match: condition` holds for `what` at `version` (None: no condition)."""
    if condition is None or allows(condition, version):
        return
    raise PreconditionFailedError(
        f"{what} is at version {version} (ETag {etag_of(version)}), not {condition}: it "
        "changed since you read it. Read it again, reapply your change, and send the new "
        "ETag in If-Match.",
        extensions={"current_version": version, "current_etag": etag_of(version)},
    )


def with_etag(response: Response, resource: V) -> V:
    """Set `ETag` from the resource's version; returns the resource for the route."""
    response.headers["ETag"] = etag_of(resource.version)
    return resource


_ETAG_HEADER = {
    "ETag": {
        "description": 'The resource\'s version as a strong entity tag, e.g. `"3"`; send it '
        "back in `If-Match` to change or delete exactly this version.",
        "schema": {"type": "string"},
    }
}
_PRECONDITION_FAILED = {
    "model": Problem,
    "content": {PROBLEM_MEDIA_TYPE: {}},
    "description": "`If-Match` names a version that is no longer current; nothing changed. "
    "`current_version` says which one is.",
}


def etag_responses(
    status: int | None = 200, *, conditional: bool = False
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: the `ETag` header on `status` (None: no body, no
    ETag, as a 204), and 412 when the route honours `If-Match`."""
    responses: dict[int | str, dict[str, Any]] = {}
    if status is not None:
        responses[status] = {"headers": _ETAG_HEADER}
    if conditional:
        responses[412] = _PRECONDITION_FAILED
    return responses

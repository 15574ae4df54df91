"""RFC 9457 problem details: the one shape of every error this API returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

PROBLEM_MEDIA_TYPE = "application/problem+json"
DATABASE_RETRY_AFTER_SECONDS = 5

log = logging.getLogger("reliability_studio.errors")


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Dotted path of the field, e.g. `service_ids.0`.")
    location: str = Field(description="`body`, `query`, `path` or `header`.")
    message: str


class Problem(BaseModel):
    """An error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise to answer with a problem response. Subclasses fix the status and title."""

    status = 400
    title = "Bad Request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions or {}


class NotFoundError(ProblemError):
    status = 404
    title = "Not Found"


class ConflictError(ProblemError):
    status = 409
    title = "Conflict"


class PreconditionFailedError(ProblemError):
    """`If-Match` named a version that is not the current one (RFC 9110, 15.5.13)."""

    status = 412
    title = "Precondition Failed"


class UnprocessableError(ProblemError):
    """Well-formed input that breaks a rule; `field` names the culprit."""

    status = 422
    title = "Unprocessable Content"

    def __init__(self, detail: str, *, field: str, location: str = "body") -> None:
        super().__init__(
            detail, errors=[FieldError(field=field, location=location, message=detail)]
        )


class BadRequestError(ProblemError):
    status = 400
    title = "Bad Request"


class ServiceUnavailableError(ProblemError):
    status = 503
    title = "Service Unavailable"


class UnauthorizedError(ProblemError):
    status = 401
    title = "Unauthorized"


class ForbiddenError(ProblemError):
    status = 403
    title = "Forbidden"


class TooManyRequestsError(ProblemError):
    status = 429
    title = "Too Many Requests"


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    request_id: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """A problem+json response; `extensions` are extra members (RFC 9457, section 3.2)."""
    body = Problem(title=title, status=status, detail=detail, request_id=request_id, errors=errors)
    all_headers = dict(headers or {})
    if request_id:
        all_headers["X-Request-ID"] = request_id
    return Response(
        content=orjson.dumps({**(extensions or {}), **body.model_dump(exclude_none=True)}),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=all_headers,
    )


def request_id_of(request: Request) -> str | None:
    """The request id the middleware attached to this request."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _field_error(error: dict[str, Any]) -> FieldError:
    location, *path = [str(part) for part in error.get("loc", ("body",))] or ["body"]
    return FieldError(
        field=".".join(path) or location, location=location, message=str(error.get("msg", ""))
    )


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw_errors = list(exc.errors())
    if _sent_a_body_that_is_not_json(request, raw_errors):
        return problem_response(
            415,
            "Unsupported Media Type",
            "Send the body as JSON with Content-Type: application/json.",
            request_id=request_id_of(request),
        )
    if any(error.get("type") == "json_invalid" for error in raw_errors):
        return problem_response(
            400,
            "Malformed JSON",
            "The request body is not valid JSON.",
            request_id=request_id_of(request),
        )
    errors = [_field_error(error) for error in raw_errors]
    fields = ", ".join(sorted({error.field for error in errors}))
    return problem_response(
        422,
        "Validation failed",
        f"Invalid fields: {fields}",
        request_id=request_id_of(request),
        errors=errors,
    )


def _sent_a_body_that_is_not_json(request: Request, errors: list[dict[str, Any]]) -> bool:
    """FastAPI only parses JSON bodies; anything else surfaces as a confusing body error."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    is_json = media_type == "application/json" or media_type.endswith("+json")
    # A missing body is a missing field (422), whatever the headers say.
    body_errors = any(
        tuple(error.get("loc", ())) == ("body",) and error.get("type") != "missing"
        for error in errors
    )
    return body_errors and not is_json


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        request_id=request_id_of(request),
        errors=exc.errors,
        headers=exc.headers,
        extensions=exc.extensions,
    )


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if exc.detail != title else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = ", ".join(allowed)
    return problem_response(
        exc.status_code,
        title,
        detail,
        request_id=request_id_of(request),
        headers=headers,
    )


_PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route offers at this path.

    Starlette's own `Allow` names only the first route whose path matches, so a path served
    by two routes (`GET` and `POST /api/incidents`) would claim to allow one. Probing each
    method through the public `matches` works whatever the router's internal layout.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _PROBED_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _on_database_unavailable(request: Request, exc: Exception) -> Response:
    # Only connection-level failures land here; constraint errors are handled in services.
    if (
        isinstance(exc, DBAPIError)
        and not exc.connection_invalidated
        and not isinstance(exc, OperationalError)
    ):
        raise exc
    log.warning(
        "database unavailable",
        extra={"request_id": request_id_of(request), "error": repr(exc)},
    )
    return problem_response(
        503,
        "Database unavailable",
        "The database cannot be reached; retry shortly.",
        request_id=request_id_of(request),
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


async def _on_stale_data(request: Request, exc: Exception) -> Response:
    """A versioned row changed between this request's read and its write.

    Writes through the API lock their row first (`api/concurrency.py`), so this is a
    safety net, never the normal path: a conflict, not a server error. With `If-Match`,
    the precondition evidently no longer held: 412."""
    log.warning(
        "concurrent update detected at flush",
        extra={"request_id": request_id_of(request), "error": str(exc)},
    )
    conditional = "if-match" in request.headers
    return problem_response(
        412 if conditional else 409,
        "Precondition Failed" if conditional else "Conflict",
        "The resource was changed by another writer while this request ran; "
        "read it again and retry.",
        request_id=request_id_of(request),
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, a problem+json response."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StaleDataError, _on_stale_data)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(DBAPIError, _on_database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _on_database_unavailable)
    # asyncpg raises these bare while (re)connecting to a PostgreSQL that is down.
    app.add_exception_handler(ConnectionError, _on_database_unavailable)
    app.add_exception_handler(TimeoutError, _on_database_unavailable)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": description}
    for status, description in {
        400: "Malformed request",
        404: "Not found",
        409: "Conflict with the current state",
        413: "Body too large",
        415: "Body is not JSON",
        422: "Validation failed; `errors` names the fields",
        503: "Database unavailable",
    }.items()
}

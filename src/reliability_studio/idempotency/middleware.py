"""`Idempotency-Key` in the HTTP layer: a middleware, a dependency and a replay handler.

The key's scope is the caller, known only once `authorize` (an app-level dependency) has
run, inside the route; the response is known only to a middleware, outside it. So:

- `IdempotencyMiddleware` (pure ASGI) notices a `POST` carrying the header and leaves a
  slot for the request in `scope["state"]`; other requests pass straight through;
- `idempotency_key`, an app-level dependency listed after `authorize`, checks the key,
  reserves it (or raises `Replay`, 409 or 422 instead of running the endpoint);
- the middleware holds the response back until the key is settled (the response recorded,
  or the key released), then sends it: a client that has a response can replay it.

The settling happens after the route's own dependencies have closed their sessions: on
SQLite, a session left open by the endpoint would otherwise hold the write lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reliability_studio.api.problems import (
    BadRequestError,
    ConflictError,
    FieldError,
    UnprocessableError,
)
from reliability_studio.idempotency.models import COMPLETED, KEY_LENGTH, WITHHELD
from reliability_studio.idempotency.rules import (
    HEADER,
    REPLAYED_HEADER,
    RETENTION,
    RETRY_AFTER_SECONDS,
    InvalidKeyError,
    Outcome,
    Verdict,
    fingerprint,
    kept_headers,
    parse_key,
    principal_scope,
    settle,
)
from reliability_studio.idempotency.service import (
    KeyScope,
    KeyStore,
    Reservation,
    Stored,
    active_reservation,
)
from reliability_studio.identity.authenticate import Principal
from reliability_studio.identity.permissions import PUBLIC, requirement

log = logging.getLogger(__name__)

_HEADER_BYTES = HEADER.lower().encode()
_STATE_KEY = "idempotency"
HOURS = int(RETENTION.total_seconds() // 3600)
DESCRIPTION = (
    f"Makes a retry safe: a request sent again with the same key and the same body gets the "
    f"first response again (marked `{REPLAYED_HEADER}: true`) and changes nothing. The same "
    f"key with another body is refused with 422; while the first request still runs, a "
    f"retry waits for it, then answers 409 with `Retry-After`. Keys are the caller's own "
    f"(per organization and principal) and are kept {HOURS} h. Up to {KEY_LENGTH} printable "
    f"ASCII characters; a UUID is a good key."
)


@dataclass
class KeyedRequest:
    """What the middleware and the dependency share about one keyed `POST`."""

    values: list[str]
    store: KeyStore | None = None
    reservation: Reservation | None = None
    messages: list[Message] = field(default_factory=list)


class Replay(Exception):  # noqa: N818 (not an error: an answer found in the store)
    """Answer with the response recorded for the key instead of running the endpoint."""

    def __init__(self, stored: Stored) -> None:
        super().__init__("replay")
        self.stored = stored


class IdempotencyMiddleware:
    """Holds back the response of a keyed `POST` until its key is settled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        values = [value for name, value in scope["headers"] if name == _HEADER_BYTES]
        if not values:
            await self.app(scope, receive, send)
            return

        keyed = KeyedRequest([value.decode("latin-1") for value in values])
        scope.setdefault("state", {})[_STATE_KEY] = keyed

        async def hold_back(message: Message) -> None:
            if keyed.reservation is None:  # refused, replayed, or not ours to keep
                await send(message)
            else:
                keyed.messages.append(message)

        try:
            await self.app(scope, receive, hold_back)
        except Exception:
            if keyed.reservation is not None:
                await _settle(keyed, None)
            raise
        except BaseException:  # cancelled: no more awaiting; the key waits out its lease
            if keyed.reservation is not None and keyed.store is not None:
                keyed.reservation.open = False
                keyed.store.waiters.done(keyed.reservation.scope)
            raise
        if keyed.reservation is not None:
            await _settle(keyed, keyed.messages)
            for message in keyed.messages:
                await send(message)


async def _settle(keyed: KeyedRequest, messages: list[Message] | None) -> None:
    """Record the response, or release the key, as `rules.settle` says. Never raises: the
    response goes out whatever happens here (the key then waits out its lease)."""
    reservation, store = keyed.reservation, keyed.store
    assert reservation is not None
    assert store is not None
    reservation.open = False
    status: int | None = None
    headers: list[tuple[str, str]] = []
    body = b""
    for message in messages or ():
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in message.get("headers", [])
            ]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")
    outcome = settle(status, headers, len(body), reservation.applied)
    try:
        if outcome is Outcome.STORE:
            assert status is not None
            await store.complete(reservation, COMPLETED, status, kept_headers(headers), body)
        elif outcome is Outcome.WITHHOLD:
            await store.complete(reservation, WITHHELD, status or 500, None, None)
        else:
            await store.release(reservation)
    except Exception:
        log.exception("could not settle an idempotency key", extra={"outcome": outcome.value})
    finally:
        store.waiters.done(reservation.scope)


async def idempotency_key(connection: HTTPConnection) -> None:
    """Reserve the request's `Idempotency-Key`, or answer from it (app-level dependency,
    after `authorize`). Without the header it does nothing at all."""
    keyed: KeyedRequest | None = connection.scope.get("state", {}).get(_STATE_KEY)
    if keyed is None:
        return
    # Only the middleware's keyed POSTs get this far: HTTP requests, never WebSockets.
    assert isinstance(connection, Request)
    request = connection
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a public route (sign-in): nobody to keep keys for
        return
    try:
        key = parse_key(keyed.values)
    except InvalidKeyError as error:
        raise BadRequestError(str(error), errors=[_header_error(str(error))]) from None
    scope = KeyScope(
        organization_id=principal.organization_id,
        principal=principal_scope(principal.kind, principal.id, principal.name),
        key=key,
    )
    method, path = request.method, request.scope["path"]
    request_fingerprint = fingerprint(
        method, path, request.scope.get("query_string", b""), await request.body()
    )
    store: KeyStore = request.app.state.idempotency
    found = await store.begin(scope, request_fingerprint, method, path)
    if isinstance(found, Reservation):
        keyed.store, keyed.reservation = store, found
        active_reservation.set(found)
        return
    verdict, stored = found
    raise _answer(verdict, stored)


def _answer(verdict: Verdict, stored: Stored) -> Exception:
    if verdict is Verdict.REPLAY:
        return Replay(stored)
    if verdict is Verdict.MISMATCH:
        return UnprocessableError(
            f"this {HEADER} was used for another request ({stored.method} {stored.path} "
            "with another body); send a new key for a new request",
            field=HEADER,
            location="header",
        )
    if verdict is Verdict.WAIT:
        return ConflictError(
            f"a request with this {HEADER} is still being processed; retry shortly",
            errors=[_header_error("in progress")],
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if verdict is Verdict.WITHHELD:
        detail = (
            f"the request with this {HEADER} was carried out, but its response was not kept "
            "(it held a secret, was too large, or the request failed after making its "
            "change); it will not be carried out again"
        )
    else:
        detail = (
            f"the request with this {HEADER} was carried out, but the server stopped before "
            "recording its response; it will not be carried out again"
        )
    return ConflictError(detail, errors=[_header_error(verdict.value)])


def _header_error(message: str) -> FieldError:
    return FieldError(field=HEADER, location="header", message=message)


async def _replay(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replay)
    stored = exc.stored
    assert stored.response_status is not None
    response = Response(content=stored.response_body or b"", status_code=stored.response_status)
    for name, value in stored.response_headers or ():
        if name != "content-length":
            response.headers.append(name, value)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def install_idempotency(app: FastAPI) -> None:
    """Keep the keys of `app` (the middleware; `idempotency_key` goes in its dependencies,
    after `authorize`) and document the header on every `POST` that honours it."""
    # The sessionmaker is made by the lifespan, after this: the store asks for it.
    app.state.idempotency = KeyStore(lambda: app.state.sessionmaker)
    app.add_exception_handler(Replay, _replay)
    app.add_middleware(IdempotencyMiddleware)
    _document_the_header(app)


def _document_the_header(app: FastAPI) -> None:
    generate = app.openapi
    parameter = {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": DESCRIPTION,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": KEY_LENGTH,
            "pattern": "^[!-~]+$",
        },
    }

    def openapi() -> dict[str, Any]:
        document = generate()
        for path, operations in document.get("paths", {}).items():
            operation = operations.get("post")
            if operation is None or requirement("POST", path) in (None, PUBLIC):
                continue
            parameters = operation.setdefault("parameters", [])
            if all(p.get("name") != HEADER for p in parameters):
                parameters.append(parameter)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = [
    "IdempotencyMiddleware",
    "Replay",
    "idempotency_key",
    "install_idempotency",
]

"""Limits on what a request may carry, checked before any handler or parser sees it.

- JSON bodies (`JSONLimitsMiddleware`): UTF-8 only (RFC 8259 section 8.1), no raw NUL byte,
  nested at most `MAX_JSON_DEPTH` levels. Python's `json` parser, which FastAPI uses,
  recurses once per level: 100,000 levels deep ends in a `RecursionError` deep inside the
  parser. The depth is measured here without recursion, in C-speed byte operations, and only
  when the body holds more brackets than the limit (most bodies do not: they cost a UTF-8
  check and two `bytes.count`).
- Query strings (`check_query`, an application-wide dependency): percent-encoded bytes must be
  UTF-8 and hold no NUL (PostgreSQL cannot store NUL, and a filter is a query parameter); a
  single-valued parameter may appear once (FastAPI would silently keep the last), a list
  parameter at most `MAX_LIST_VALUES` times; at most `MAX_QUERY_ITEMS` in all, each at most
  `MAX_QUERY_VALUE_CHARS` long.

Each refusal is a problem+json that names the parameter (or `body`).
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_to_bytes

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reliability_studio.api.problems import FieldError, UnprocessableError, problem_response

if TYPE_CHECKING:
    import numpy as np

# A parser-safety bound, far below Python's recursion limit (1000, shared with the frames
# already on the stack). Fields set their own, tighter limits (free-form JSON: 32 levels,
# api/fields.py), and name themselves when they refuse.
MAX_JSON_DEPTH = 512
MAX_QUERY_ITEMS = 256
MAX_LIST_VALUES = 100
MAX_QUERY_VALUE_CHARS = 4096

# Only quotes and brackets matter to the depth; `_bracket_steps()` gives each bracket's step.
_NOT_QUOTES_OR_BRACKETS = bytes(c for c in range(256) if c not in b'"[]{}')
_QUOTE = ord('"')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)


@functools.cache
def _bracket_steps() -> np.ndarray:
    """+1 for an opening bracket, -1 for a closing one, 0 for any other byte.

    Made at the first JSON body, like numpy's import: `serve` answers sooner without them."""
    import numpy as np

    steps = np.zeros(256, dtype=np.int8)
    steps[list(b"[{")] = 1
    steps[list(b"]}")] = -1
    return steps


def json_depth(body: bytes) -> int:
    """How deeply the JSON text `body` nests arrays and objects; no recursion, no parsing.

    Exact for valid JSON: escape sequences are dropped (only needed when an escaped quote
    exists, since only a quote's escape can change what is inside a string), everything but
    quotes and brackets is deleted, brackets inside strings (odd quote count before them) are
    ignored, and the running sum of the rest is taken. For text that is not JSON the figure
    is meaningless but harmless: the parser refuses such text anyway.
    """
    if b'\\"' in body:
        body = _ESCAPE.sub(b"", body)
    kept = body.translate(None, _NOT_QUOTES_OR_BRACKETS)
    if not kept:
        return 0
    import numpy as np

    chars = np.frombuffer(kept, dtype=np.uint8)
    in_string = (np.cumsum(chars == _QUOTE, dtype=np.int64) & 1).astype(bool)
    steps = _bracket_steps()[chars]
    steps[in_string] = 0
    return int(np.cumsum(steps, dtype=np.int64).max())


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return False


def body_problem(body: bytes) -> str | None:
    """Why a JSON body is refused before parsing, or None."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"The request body is not valid UTF-8 (at byte {exc.start}); JSON must be UTF-8."
    if b"\x00" in body:  # never valid JSON; Python's parser would guess UTF-16 from it
        return "The request body is not valid JSON: it contains a raw NUL byte."
    # Cheap bound first: a body with few brackets cannot nest deeply.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and json_depth(body) > MAX_JSON_DEPTH:
        return f"The request body nests JSON deeper than {MAX_JSON_DEPTH} levels."
    return None


class JSONLimitsMiddleware:
    """Refuse JSON bodies not in UTF-8, holding a raw NUL or nesting too deeply: 400, `body`.

    The body is read whole (the size limit, outside this middleware, bounds it) and handed on
    unchanged. Bodies of other media types pass untouched: the handlers refuse them (415).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and (problem := body_problem(body)) is not None:
            response = problem_response(
                400,
                "Bad Request",
                problem,
                request_id=scope.get("state", {}).get("request_id"),
                errors=[FieldError(field="body", location="body", message=problem)],
            )
            await response(scope, receive, send)
            return
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives `messages` first, then whatever the real one gives."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


# --- query strings ----------------------------------------------------------------------------

_SEQUENCES = (list, set, tuple, frozenset, Sequence)


def _is_sequence(annotation: Any) -> bool:
    """Whether a parameter's annotation takes several values (`list[str] | None`, ...)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_sequence(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_is_sequence(arg) for arg in typing.get_args(annotation))
    return origin in _SEQUENCES or annotation in _SEQUENCES


def _query_params_of(dependant: Any) -> dict[str, bool]:
    """Every query parameter of a route (its dependencies' too): name -> takes several."""
    found: dict[str, bool] = {}
    stack = [dependant]
    while stack:
        current = stack.pop()
        for param in getattr(current, "query_params", []):
            found[param.alias] = _is_sequence(param.field_info.annotation)
        stack.extend(getattr(current, "dependencies", []))
    return found


def _route_query_params(connection: HTTPConnection) -> dict[str, bool]:
    """The matched route's query parameters: name -> takes several values.

    Not cached: it is only needed on the rare paths (a repeated parameter, a percent-escape
    to check), and it costs a walk of a few dependencies.
    """
    dependant = getattr(connection.scope.get("route"), "dependant", None)
    return {} if dependant is None else _query_params_of(dependant)


def _query_error(message: str, name: str) -> UnprocessableError:
    return UnprocessableError(message, field=name or "query", location="query")


def _check_encoding(connection: HTTPConnection, raw: bytes) -> None:
    """Percent-encoded bytes must decode as UTF-8 and hold no NUL; names the parameter as
    validation does (`status.1` for the second value of a list parameter)."""
    seen: dict[str, int] = {}
    for item in raw.split(b"&"):
        name_bytes, _, value_bytes = item.partition(b"=")
        name = unquote(name_bytes.decode("latin-1").replace("+", " "), errors="replace")
        position = seen.get(name, 0)
        seen[name] = position + 1
        for part in (name_bytes, value_bytes):
            decoded = unquote_to_bytes(part.replace(b"+", b" "))
            try:
                decoded.decode("utf-8")
                problem = "must not contain NUL" if b"\x00" in decoded else None
            except UnicodeDecodeError:
                problem = "is not valid UTF-8 once percent-decoded"
            if problem is not None:
                several = _route_query_params(connection).get(name, False)
                field = f"{name}.{position}" if several else name
                raise _query_error(f"query parameter {name!r} {problem}", field)


async def check_query(connection: HTTPConnection) -> None:
    """Refuse abusive query strings with a 422 naming the parameter (see the module doc)."""
    raw: bytes = connection.scope.get("query_string", b"")
    if not raw or connection.scope["type"] != "http":
        # WebSocket handshakes cannot be answered with a problem response; the live stream
        # validates its own (UUID) parameters.
        return
    if b"%" in raw or b"\x00" in raw or not raw.isascii():
        _check_encoding(connection, raw)
    items = connection.query_params.multi_items()
    if len(items) > MAX_QUERY_ITEMS:
        raise _query_error(f"at most {MAX_QUERY_ITEMS} query parameters may be given", "query")
    counts: dict[str, int] = {}
    for name, value in items:
        if len(value) > MAX_QUERY_VALUE_CHARS:
            raise _query_error(
                f"query parameter {name!r} is longer than {MAX_QUERY_VALUE_CHARS} characters",
                name,
            )
        counts[name] = counts.get(name, 0) + 1
    repeated = [name for name, count in counts.items() if count > 1]
    if not repeated:
        return
    params = _route_query_params(connection)
    for name in repeated:
        if params.get(name) is False:  # single-valued: FastAPI would silently keep the last
            raise _query_error(
                f"query parameter {name!r} takes one value but was given {counts[name]}", name
            )
        if counts[name] > MAX_LIST_VALUES:
            raise _query_error(
                f"query parameter {name!r} takes at most {MAX_LIST_VALUES} values", name
            )

"""What an `Idempotency-Key` means, decided without I/O.

The header follows Stripe and the IETF draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header): the draft writes the key as a Structured Field
string (`"8e03978e-..."`), Stripe and most clients send it bare (`8e03978e-...`); both are
accepted and mean the same key. A key is 1 to 255 printable ASCII characters.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from reliability_studio.idempotency.models import (
    APPLIED,
    COMPLETED,
    IN_PROGRESS,
    KEY_LENGTH,
    WITHHELD,
)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Keys are kept this long after their first use (Stripe's and the figure); a key
# used again after that starts a new request.
RETENTION = timedelta(hours=24)
# A reservation whose request has written nothing for this long is taken to be abandoned
# (its process died), and a retry may take it over. Far beyond any request's duration; and
# should the first request commit after all, its commit is refused (`service.fence`).
LEASE = timedelta(seconds=60)
# A retry that finds its key in progress waits this long for the first request's response
# before answering 409 with Retry-After.
WAIT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 1
# Bigger responses are not kept (their key answers 409 "withheld", and is never re-run).
MAX_STORED_BODY_BYTES = 1024 * 1024
# The response headers a replay repeats; the others (request id, security headers, CORS)
# belong to each response and are added again by the middleware that owns them.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "content-location",
        "location",
        "etag",
        "last-modified",
        "link",
        "retry-after",
    }
)


class InvalidKeyError(ValueError):
    """The header is there but holds no usable key; the message says why."""


def parse_key(values: Sequence[str]) -> str:
    """The key carried by the `Idempotency-Key` field lines `values` (latin-1 decoded)."""
    if len(values) != 1:
        raise InvalidKeyError(f"send one {HEADER} header, not {len(values)}")
    raw = values[0].strip(" \t")
    if raw.startswith('"'):
        key = _sf_string(raw)
    else:
        key = raw
        if any(not "\x21" <= char <= "\x7e" for char in key):
            raise InvalidKeyError(
                f"{HEADER} must be printable ASCII without spaces, or a quoted string"
            )
    if not key:
        raise InvalidKeyError(f"{HEADER} is empty")
    if len(key) > KEY_LENGTH:
        raise InvalidKeyError(f"{HEADER} is longer than {KEY_LENGTH} characters")
    return key


def _sf_string(raw: str) -> str:
    """An RFC 8941 sf-string: `"` printable ASCII, with `\\"` and `\\\\` escapes, `"`."""
    characters: list[str] = []
    escaped = False
    for position, char in enumerate(raw[1:], start=1):
        if escaped:
            if char not in '"\\':
                raise InvalidKeyError(f'{HEADER}: only \\" and \\\\ may be escaped')
            characters.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            if position != len(raw) - 1:
                raise InvalidKeyError(f"{HEADER}: text after the closing quote")
            return "".join(characters)
        elif not "\x20" <= char <= "\x7e":
            raise InvalidKeyError(f"{HEADER} must be printable ASCII")
        else:
            characters.append(char)
    raise InvalidKeyError(f"{HEADER}: the quoted string is not closed")


def principal_scope(kind: str, identity: object | None, name: str) -> str:
    """Whose keys these are: the principal (user, service account, integration), not the
    credential, so that a retry sent with a rotated token still finds its key."""
    return f"{kind}:{identity if identity is not None else name}"


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """SHA-256 of the request: a retry must send the same method, target and body.

    A JSON body is compared by its value (keys sorted, spacing ignored), so that a client
    library that serialises a retry differently is not taken for a different request.
    """
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    digest.update(_canonical(body))
    return digest.hexdigest()


def _canonical(body: bytes) -> bytes:
    stripped = body.strip()
    if not stripped.startswith((b"{", b"[")):
        return body
    try:
        return orjson.dumps(orjson.loads(stripped), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


class Verdict(enum.Enum):
    """What a request does about the row its key already has."""

    REPLAY = "replay"  # answer with the recorded response
    MISMATCH = "mismatch"  # the key was used for another request: 422
    WAIT = "wait"  # the first request is still running
    TAKE_OVER = "take_over"  # expired, or abandoned before any write: run it again
    LOST = "lost"  # carried out, but its response was never recorded: 409
    WITHHELD = "withheld"  # carried out, its response not kept: 409


@dataclass(frozen=True)
class Seen:
    """The parts of a stored key that decide what a retry gets."""

    fingerprint: str
    state: str
    created_at: datetime
    locked_at: datetime


def judge(seen: Seen, request_fingerprint: str, now: datetime) -> Verdict:
    """What a request with `request_fingerprint` does about the key's row `seen`."""
    if seen.created_at <= now - RETENTION:
        return Verdict.TAKE_OVER
    if seen.fingerprint != request_fingerprint:
        return Verdict.MISMATCH
    if seen.state == COMPLETED:
        return Verdict.REPLAY
    if seen.state == WITHHELD:
        return Verdict.WITHHELD
    abandoned = seen.locked_at <= now - LEASE
    if seen.state == IN_PROGRESS:
        return Verdict.TAKE_OVER if abandoned else Verdict.WAIT
    assert seen.state == APPLIED, seen.state
    return Verdict.LOST if abandoned else Verdict.WAIT


class Outcome(enum.Enum):
    """What becomes of a key once its request has answered."""

    STORE = "store"  # record the response; retries replay it
    WITHHOLD = "withhold"  # carried out, response not kept: retries get 409, never a re-run
    RELEASE = "release"  # nothing was written: forget the key, a retry runs afresh


def settle(
    status: int | None, headers: Iterable[tuple[str, str]], body_size: int, applied: bool
) -> Outcome:
    """The outcome of a request that answered `status` (None: it raised), having
    committed a write (`applied`) or not.

    Success is kept, unless the response holds a secret (`Cache-Control: no-store`: a new
    API token) or is too big. A failure that wrote nothing is forgotten: errors here change
    nothing (validation, 404, 409, 429, 503), so running the retry again is safe, and is
    what lets a client retry after an outage or after fixing what was missing. A failure
    after a write is kept when deterministic (4xx); a crash after a write (5xx) is
    withheld: replaying a 500 would hide that the change was made.
    """
    if status is not None and 200 <= status < 300:
        no_store = any(
            name == "cache-control" and "no-store" in value.lower() for name, value in headers
        )
        return Outcome.WITHHOLD if no_store or body_size > MAX_STORED_BODY_BYTES else Outcome.STORE
    if not applied:
        return Outcome.RELEASE
    if status is not None and status < 500 and body_size <= MAX_STORED_BODY_BYTES:
        return Outcome.STORE
    return Outcome.WITHHOLD


def kept_headers(headers: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The response headers a replay repeats (names lower-case, order kept)."""
    return [[name, value] for name, value in headers if name in KEPT_HEADERS]

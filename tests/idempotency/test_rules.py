"""Specification of what an `Idempotency-Key` means, without a server: its syntax, the
request fingerprint, and what a retry gets for each state of the stored key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reliability_studio.idempotency.models import APPLIED, COMPLETED, IN_PROGRESS, WITHHELD
from reliability_studio.idempotency.rules import (
    LEASE,
    MAX_STORED_BODY_BYTES,
    RETENTION,
    InvalidKeyError,
    Outcome,
    Seen,
    Verdict,
    fingerprint,
    judge,
    kept_headers,
    parse_key,
    principal_scope,
    settle,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FINGERPRINT = fingerprint("POST", "/api/incidents", b"", b'{"title": "down"}')


# --- the header ---------------------------------------------------------------------------


def test_a_bare_key_is_taken_as_sent() -> None:
    assert parse_key(["8e03978e-40d5-43e8-bc93-6894a57f9324"]) == (
        "8e03978e-40d5-43e8-bc93-6894a57f9324"
    )


def test_a_quoted_key_as_the_ietf_draft_writes_it_is_the_same_key_as_the_bare_one() -> None:
    assert parse_key(['"8e03978e-40d5"']) == parse_key(["8e03978e-40d5"])


def test_a_quoted_key_may_hold_spaces_and_escaped_quotes() -> None:
    assert parse_key(['"order 42 \\"retry\\" \\\\"']) == 'order 42 "retry" \\'


def test_surrounding_whitespace_is_not_part_of_the_key() -> None:
    assert parse_key(["  abc\t"]) == "abc"


def test_a_key_of_255_characters_is_accepted() -> None:
    assert parse_key(["k" * 255]) == "k" * 255


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([""], "empty"),
        (['""'], "empty"),
        (["k" * 256], "longer than 255"),
        (['"' + "k" * 256 + '"'], "longer than 255"),
        (["two words"], "printable ASCII"),
        (["caf\u00e9"], "printable ASCII"),
        (["nul\x00"], "printable ASCII"),
        (['"unclosed'], "not closed"),
        (['"a"b'], "after the closing quote"),
        (['"a\\nb"'], "escaped"),
        (["a", "b"], "one Idempotency-Key header"),
    ],
)
def test_a_header_that_holds_no_usable_key_is_refused_with_the_reason(
    values: list[str], reason: str
) -> None:
    with pytest.raises(InvalidKeyError, match=reason):
        parse_key(values)


def test_keys_belong_to_the_principal_not_to_the_credential() -> None:
    assert principal_scope("user", "u-1", "alice") == "user:u-1"
    assert principal_scope("integration", None, "alertmanager") == "integration:alertmanager"


# --- the fingerprint ----------------------------------------------------------------------


def test_the_same_json_sent_with_other_spacing_or_key_order_is_the_same_request() -> None:
    assert fingerprint("POST", "/api/incidents", b"", b'{"a":1,"b":[1,2]}') == fingerprint(
        "POST", "/api/incidents", b"", b'{ "b": [1, 2],\n "a": 1 }'
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("POST", "/api/incidents", b"", b'{"title": "up"}'),
        ("POST", "/api/services", b"", b'{"title": "down"}'),
        ("POST", "/api/incidents", b"dry_run=1", b'{"title": "down"}'),
        ("PATCH", "/api/incidents", b"", b'{"title": "down"}'),
    ],
)
def test_another_body_path_query_or_method_is_another_request(
    method: str, path: str, query: bytes, body: bytes
) -> None:
    assert fingerprint(method, path, query, body) != FINGERPRINT


def test_a_body_that_is_not_json_is_compared_byte_for_byte() -> None:
    assert fingerprint("POST", "/x", b"", b"{not json") == fingerprint(
        "POST", "/x", b"", b"{not json"
    )
    assert fingerprint("POST", "/x", b"", b"{not json") != fingerprint(
        "POST", "/x", b"", b"{not  json"
    )


# --- what a retry gets ----------------------------------------------------------------------


def _seen(state: str, *, age: timedelta = timedelta(0), locked: timedelta = timedelta(0)) -> Seen:
    return Seen(FINGERPRINT, state, created_at=NOW - age, locked_at=NOW - locked)


@pytest.mark.parametrize(
    ("seen", "verdict"),
    [
        (_seen(COMPLETED), Verdict.REPLAY),
        (_seen(WITHHELD), Verdict.WITHHELD),
        (_seen(IN_PROGRESS), Verdict.WAIT),
        (_seen(APPLIED), Verdict.WAIT),
        (_seen(IN_PROGRESS, locked=LEASE), Verdict.TAKE_OVER),
        (_seen(APPLIED, locked=LEASE), Verdict.LOST),
        (_seen(COMPLETED, age=RETENTION - timedelta(seconds=1)), Verdict.REPLAY),
        (_seen(COMPLETED, age=RETENTION), Verdict.TAKE_OVER),
        (_seen(APPLIED, age=RETENTION, locked=RETENTION), Verdict.TAKE_OVER),
    ],
    ids=lambda value: value.value if isinstance(value, Verdict) else value.state,
)
def test_a_retry_with_the_same_request_gets_what_the_state_of_its_key_says(
    seen: Seen, verdict: Verdict
) -> None:
    assert judge(seen, FINGERPRINT, NOW) is verdict


@pytest.mark.parametrize("state", [COMPLETED, WITHHELD, IN_PROGRESS, APPLIED])
def test_a_different_request_under_a_live_key_is_a_mismatch_whatever_its_state(
    state: str,
) -> None:
    assert judge(_seen(state), "another fingerprint", NOW) is Verdict.MISMATCH


def test_a_different_request_under_an_expired_key_starts_afresh() -> None:
    assert judge(_seen(COMPLETED, age=RETENTION), "another", NOW) is Verdict.TAKE_OVER


# --- what is kept once a request has answered -----------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "size", "applied", "outcome"),
    [
        (201, [], 100, True, Outcome.STORE),
        (200, [], 100, False, Outcome.STORE),  # a POST that wrote nothing still answers so
        (201, [("cache-control", "no-store")], 100, True, Outcome.WITHHOLD),
        (201, [], MAX_STORED_BODY_BYTES + 1, True, Outcome.WITHHOLD),
        (422, [], 100, False, Outcome.RELEASE),
        (409, [], 100, False, Outcome.RELEASE),
        (503, [], 100, False, Outcome.RELEASE),
        (None, [], 0, False, Outcome.RELEASE),
        (409, [], 100, True, Outcome.STORE),
        (500, [], 100, True, Outcome.WITHHOLD),
        (None, [], 0, True, Outcome.WITHHOLD),
    ],
)
def test_what_is_kept_depends_on_the_status_and_on_whether_a_write_was_committed(
    status: int | None, headers: list[tuple[str, str]], size: int, applied: bool, outcome: Outcome
) -> None:
    assert settle(status, headers, size, applied) is outcome


def test_a_replay_repeats_the_headers_that_describe_the_result_and_no_others() -> None:
    headers = [
        ("content-type", "application/json"),
        ("location", "/api/incidents/1"),
        ("etag", '"1"'),
        ("x-request-id", "abc"),
        ("set-cookie", "s=1"),
        ("content-length", "10"),
    ]
    assert kept_headers(headers) == [
        ["content-type", "application/json"],
        ["location", "/api/incidents/1"],
        ["etag", '"1"'],
    ]

"""Specification of how a token's use is recorded (`last_used_at`): once a minute at most."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from tests.support.identity import bearer, user_token

from reliability_studio.config import Settings
from reliability_studio.identity.authenticate import LAST_USED_RESOLUTION, UseMarks

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_a_token_never_used_is_due_for_a_write() -> None:
    assert UseMarks().due(uuid.uuid4(), None, NOW)


def test_a_use_within_the_minute_of_the_recorded_one_is_not_written() -> None:
    assert not UseMarks().due(uuid.uuid4(), NOW - timedelta(seconds=30), NOW)


def test_a_use_a_minute_after_the_recorded_one_is_written() -> None:
    assert UseMarks().due(uuid.uuid4(), NOW - LAST_USED_RESOLUTION, NOW)


def test_concurrent_uses_that_read_the_same_old_time_write_it_once() -> None:
    marks, token = UseMarks(), uuid.uuid4()
    stale = NOW - timedelta(hours=1)
    verdicts = [marks.due(token, stale, NOW + timedelta(milliseconds=n)) for n in range(64)]
    assert verdicts.count(True) == 1


def test_the_marks_of_other_tokens_do_not_hold_one_back() -> None:
    marks = UseMarks()
    marks.due(uuid.uuid4(), None, NOW)
    assert marks.due(uuid.uuid4(), None, NOW)


def test_the_marks_are_bounded() -> None:
    marks = UseMarks(limit=3)
    tokens = [uuid.uuid4() for _ in range(4)]
    for token in tokens:
        marks.due(token, None, NOW)
    # The first three were forgotten to make room: a use of the first is written again.
    assert marks.due(tokens[0], None, NOW)


def test_using_a_token_shows_when_in_the_token_list(secure: TestClient, settings: Settings) -> None:
    owner = bearer(user_token(settings, "owner"))
    created = secure.post("/api/tokens", json={"name": "ci"}, headers=owner)
    assert created.status_code == 201, created.text
    assert created.json()["last_used_at"] is None
    assert secure.get("/api/me", headers=bearer(created.json()["token"])).status_code == 200
    listed = secure.get("/api/tokens", headers=owner).json()["items"]
    [token] = [t for t in listed if t["id"] == created.json()["id"]]
    assert token["last_used_at"] is not None

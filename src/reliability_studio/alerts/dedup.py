"""Deduplication as pure logic: what an incoming alert message does to the alert we know.

An alert is known by its fingerprint; each fingerprint has one latest occurrence. Messages
can repeat (Alertmanager resends) and arrive out of order (a resolved before its firing),
so each message is classified against the latest occurrence before anything is written.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Action(enum.Enum):
    """What to do with one incoming message."""

    NEW = "new"  # a first occurrence, or a firing again after it resolved
    RESOLVE = "resolve"  # the latest occurrence has resolved
    REFRESH = "refresh"  # the same state again: last seen, count, annotations
    STALE = "stale"  # older than what we know: count it, change nothing else


@dataclass(frozen=True)
class Known:
    """The latest occurrence of a fingerprint, as stored."""

    status: str
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True)
class Message:
    """The part of an incoming alert that decides its action."""

    status: str
    starts_at: datetime
    ends_at: datetime | None
    starts_at_given: bool  # False when we filled in "now"


def classify(known: Known | None, message: Message) -> Action:
    """The action for `message` given the latest occurrence of its fingerprint."""
    if known is None:
        return Action.NEW
    if known.status == "firing":
        if message.status == "firing":
            return Action.REFRESH
        # A resolved message of an earlier occurrence must not end this one.
        if message.ends_at is not None and message.ends_at < known.starts_at:
            return Action.STALE
        return Action.RESOLVE
    # The latest occurrence has resolved.
    if message.status == "resolved":
        return Action.REFRESH
    if message.starts_at_given and _not_after(message.starts_at, known):
        return Action.STALE  # the firing that our resolved message overtook
    return Action.NEW


def _not_after(starts_at: datetime, known: Known) -> bool:
    """Whether an occurrence starting at `starts_at` is the known one or older."""
    if starts_at <= known.starts_at:
        return True
    return known.ends_at is not None and starts_at < known.ends_at

"""Specification of the pure parts of capture.py: JSON-safe values, merging the changes of
one transaction, and ids that keep the order of a commit's entries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from reliability_studio.audit.capture import Change, json_safe, merge, ordered_ids


def change(op: str, before: dict[str, object] | None, after: dict[str, object] | None) -> Change:
    return Change(
        action=f"service.{op}",
        resource_type="service",
        resource_id="s-1",
        before=before,
        after=after,
        op=op,
    )


def test_ids_and_times_become_strings_and_times_are_given_in_utc() -> None:
    row_id = uuid.UUID("00000000-0000-4000-8000-000000000042")
    at = datetime(2030, 1, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    assert json_safe({"id": row_id, "at": at, "ids": (row_id,)}) == {
        "id": "00000000-0000-4000-8000-000000000042",
        "at": "2030-01-01T12:30:00Z",
        "ids": ["00000000-0000-4000-8000-000000000042"],
    }


def test_numbers_json_cannot_hold_become_strings() -> None:
    assert json_safe([float("inf"), Decimal("1.5"), 2.5, 3, True]) == ["inf", "1.5", 2.5, 3, True]


def test_two_updates_of_a_row_make_one_from_the_first_value_to_the_last() -> None:
    first = change("updated", {"team": "a", "name": "x"}, {"team": "b", "name": "y"})
    second = change("updated", {"team": "b"}, {"team": "c"})
    merged = merge(first, second)
    assert merged is not None
    assert (merged.action, merged.before, merged.after) == (
        "service.updated",
        {"team": "a", "name": "x"},
        {"team": "c", "name": "y"},
    )


def test_a_field_changed_and_changed_back_is_left_out() -> None:
    first = change("updated", {"team": "a", "name": "x"}, {"team": "b", "name": "y"})
    second = change("updated", {"team": "b"}, {"team": "a"})
    merged = merge(first, second)
    assert merged is not None
    assert (merged.before, merged.after) == ({"name": "x"}, {"name": "y"})


def test_an_update_undone_in_the_same_transaction_leaves_nothing() -> None:
    assert (
        merge(
            change("updated", {"team": "a"}, {"team": "b"}),
            change("updated", {"team": "b"}, {"team": "a"}),
        )
        is None
    )


def test_a_created_row_changed_again_is_one_creation_with_its_last_values() -> None:
    created = change("created", None, {"name": "x", "team": "a"})
    merged = merge(created, change("updated", {"team": "a"}, {"team": "b"}))
    assert merged is not None
    assert (merged.action, merged.before, merged.after) == (
        "service.created",
        None,
        {"name": "x", "team": "b"},
    )


def test_a_row_created_and_deleted_in_one_transaction_leaves_nothing() -> None:
    created = change("created", None, {"name": "x"})
    assert merge(created, change("deleted", {"name": "x"}, None)) is None


def test_a_row_changed_then_deleted_is_a_deletion_of_the_row_as_it_was() -> None:
    updated = change("updated", {"team": "a"}, {"team": "b"})
    merged = merge(updated, change("deleted", {"name": "x", "team": "b"}, None))
    assert merged is not None
    assert (merged.action, merged.before, merged.after) == (
        "service.deleted",
        {"name": "x", "team": "a"},
        None,
    )


def test_ids_of_one_commit_sort_in_the_order_of_its_entries() -> None:
    ids = ordered_ids(datetime(2030, 1, 1, tzinfo=UTC), 5000)
    assert sorted(ids) == ids
    assert sorted(str(i) for i in ids) == [str(i) for i in ids]  # as SQLite compares them
    assert len(set(ids)) == 5000


def test_ids_of_a_later_millisecond_sort_after_those_of_an_earlier_one() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    [earlier] = ordered_ids(now, 1)
    [later] = ordered_ids(now + timedelta(milliseconds=1), 1)
    assert earlier < later
    assert later.version == 7

"""Specification of entity tags and `If-Match` parsing (RFC 9110, 8.8.3 and 13.1.1): pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reliability_studio.api.etags import (
    Condition,
    EntityTag,
    MalformedConditionError,
    allows,
    etag_of,
    parse_condition,
)

# `etagc`: any visible ASCII character but the double quote, and obs-text.
ETAGC = st.characters(
    codec="latin-1", categories=(), include_characters="".join(map(chr, [0x21, *range(0x23, 0x7F)]))
)


def test_the_etag_of_a_version_is_that_number_as_a_strong_tag() -> None:
    assert etag_of(3) == '"3"'
    assert etag_of(12) == '"12"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"3"', Condition(any=False, tags=(EntityTag("3"),))),
        ("*", Condition(any=True)),
        ('  "3"  ', Condition(any=False, tags=(EntityTag("3"),))),
        (
            '"1", "2",W/"3"',
            Condition(False, (EntityTag("1"), EntityTag("2"), EntityTag("3", True))),
        ),
        # RFC 9110 5.6.1: a recipient accepts empty list elements.
        (', "1" ,, "2",', Condition(False, (EntityTag("1"), EntityTag("2")))),
        ('""', Condition(any=False, tags=(EntityTag(""),))),
        ('"a-b_c!#~"', Condition(any=False, tags=(EntityTag("a-b_c!#~"),))),
    ],
)
def test_well_formed_if_match_values_parse(header: str, expected: Condition) -> None:
    assert parse_condition([header]) == expected


def test_several_field_lines_are_one_list() -> None:
    assert parse_condition(['"1"', '"2"']).tags == (EntityTag("1"), EntityTag("2"))


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        ("3", "quoted"),  # the most likely mistake: the version without its quotes
        ("W/3", "quoted"),
        ('"3', "closing quote"),
        ('"3" "4"', "comma"),
        ('"3"x', "comma"),
        ('"a b"', "visible characters"),
        ('"a\tb"', "visible characters"),
        ('*, "3"', '"*" cannot be combined'),
        ("", "empty"),
        (" , ,", "empty"),
        ('w/"3"', "quoted"),  # `W/` is case-sensitive
    ],
)
def test_malformed_if_match_values_are_refused_with_the_reason(header: str, complaint: str) -> None:
    with pytest.raises(MalformedConditionError, match="If-Match") as raised:
        parse_condition([header])
    assert complaint in str(raised.value)


def test_the_error_names_the_header_it_was_asked_about() -> None:
    with pytest.raises(MalformedConditionError, match="If-None-Match"):
        parse_condition(["3"], "If-None-Match")


@pytest.mark.parametrize(
    ("header", "version", "holds"),
    [
        ('"3"', 3, True),
        ('"3"', 4, False),
        ('"2", "3"', 3, True),
        ('"2", "4"', 3, False),
        ("*", 1, True),
        ("*", 99, True),
        # Strong comparison: a weak tag never matches, even with the same opaque value.
        ('W/"3"', 3, False),
        ('W/"3", "3"', 3, True),
        ('"03"', 3, False),  # opaque: compared character by character, not as numbers
        ('"x"', 3, False),
    ],
)
def test_if_match_holds_only_for_a_strongly_equal_tag_or_star(
    header: str, version: int, holds: bool
) -> None:
    assert allows(parse_condition([header]), version) is holds


@given(st.lists(st.tuples(st.booleans(), st.text(ETAGC, max_size=12)), min_size=1, max_size=5))
def test_any_list_of_entity_tags_survives_a_round_trip(tags: list[tuple[bool, str]]) -> None:
    condition = Condition(any=False, tags=tuple(EntityTag(opaque, weak) for weak, opaque in tags))
    assert parse_condition([str(condition)]) == condition


@given(st.integers(min_value=1, max_value=10**12))
def test_the_etag_sent_is_the_one_if_match_accepts(version: int) -> None:
    condition = parse_condition([etag_of(version)])
    assert allows(condition, version)
    assert not allows(condition, version + 1)

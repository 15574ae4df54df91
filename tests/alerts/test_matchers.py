"""Alertmanager-style label matchers (matchers.py), one behaviour per test. Pure: no I/O."""

from __future__ import annotations

import re
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reliability_studio.alerts.matchers import (
    MAX_MATCHER_LENGTH,
    Matcher,
    MatcherSyntaxError,
    Op,
    matches_all,
    parse_matcher,
)

ALERT = {"alertname": "HighErrorRate", "severity": "critical", "team": "db"}


def matches(text: str, labels: dict[str, str] = ALERT) -> bool:
    """Whether the matcher written as `text` matches `labels`."""
    return parse_matcher(text).matches(labels)


# Operators


def test_equal_matches_the_same_value() -> None:
    assert matches('severity="critical"')


def test_equal_refuses_a_different_value() -> None:
    assert not matches('severity="page"')


def test_equal_is_case_sensitive() -> None:
    assert not matches('severity="Critical"')


def test_not_equal_matches_a_different_value() -> None:
    assert matches('severity!="page"')


def test_not_equal_refuses_the_same_value() -> None:
    assert not matches('severity!="critical"')


def test_regex_matches_one_of_the_alternatives() -> None:
    assert matches('severity=~"page|critical"')


def test_regex_refuses_a_value_matching_no_alternative() -> None:
    assert not matches('severity=~"page|warning"')


def test_negative_regex_matches_a_value_the_regex_does_not() -> None:
    assert matches('severity!~"page|warning"')


def test_negative_regex_refuses_a_value_the_regex_matches() -> None:
    assert not matches('severity!~"page|critical"')


# Anchoring


def test_regex_must_match_from_the_start_of_the_value() -> None:
    assert not matches('alertname=~"ErrorRate"')


def test_regex_must_match_to_the_end_of_the_value() -> None:
    assert not matches('alertname=~"High"')


def test_every_alternative_is_anchored() -> None:
    assert not matches('severity=~"page|critic"')
    assert not matches('severity=~"ritical|page"')


def test_negative_regex_is_anchored_too() -> None:
    assert matches('alertname!~"High"')


def test_a_pattern_cannot_break_out_of_its_anchoring() -> None:
    with pytest.raises(MatcherSyntaxError, match="invalid regular expression"):
        parse_matcher('alertname=~"x)|(.*"')


def test_a_leading_case_insensitive_flag_applies_to_the_whole_pattern() -> None:
    assert matches('severity=~"(?i)page|CRITICAL"')


def test_dot_does_not_match_a_newline_as_in_alertmanager() -> None:
    assert not matches('summary=~".*"', {"summary": "line one\nline two"})


# Absent labels


def test_an_absent_label_equals_the_empty_string() -> None:
    assert matches('env=""')


def test_an_absent_label_does_not_equal_a_value() -> None:
    assert not matches('env="prod"')


def test_an_absent_label_differs_from_any_value() -> None:
    assert matches('env!="prod"')


def test_an_absent_label_is_not_different_from_the_empty_string() -> None:
    assert not matches('env!=""')


def test_an_absent_label_matches_a_regex_accepting_the_empty_string() -> None:
    assert matches('env=~"|prod"')


def test_an_absent_label_does_not_match_a_regex_requiring_characters() -> None:
    assert not matches('env=~".+"')


def test_an_absent_label_matches_a_negative_regex_requiring_characters() -> None:
    assert matches('env!~".+"')


# Parsing


@pytest.mark.parametrize("op", ["=", "!=", "=~", "!~"])
def test_each_operator_is_read(op: Op) -> None:
    assert parse_matcher(f'team{op}"db"') == Matcher("team", op, "db")


def test_spaces_around_the_operator_are_ignored() -> None:
    assert parse_matcher('team  =~  "db"') == Matcher("team", "=~", "db")


def test_spaces_around_the_matcher_are_ignored() -> None:
    assert parse_matcher('  team="db"  ') == Matcher("team", "=", "db")


def test_spaces_inside_quotes_are_kept() -> None:
    assert parse_matcher('summary=" disk full "').value == " disk full "


def test_an_unquoted_value_is_read_to_the_end_and_trimmed() -> None:
    assert parse_matcher("summary =  disk full  ") == Matcher("summary", "=", "disk full")


def test_an_unquoted_regex_is_read_as_is() -> None:
    assert parse_matcher("severity=~page|critical") == Matcher("severity", "=~", "page|critical")


def test_a_quoted_value_may_be_empty() -> None:
    assert parse_matcher('env=""') == Matcher("env", "=", "")


def test_an_unquoted_value_may_be_empty() -> None:
    assert parse_matcher("env!=") == Matcher("env", "!=", "")


def test_operator_characters_inside_the_value_are_part_of_it() -> None:
    assert parse_matcher('query="a!=b=~c"').value == "a!=b=~c"


def test_label_names_may_contain_underscores_and_digits() -> None:
    assert parse_matcher('_service_2="api"').name == "_service_2"


def test_a_value_may_hold_any_unicode() -> None:
    assert parse_matcher('summary="Überlast 🔥"').value == "Überlast 🔥"


# Escapes


def test_backslash_quote_is_a_double_quote() -> None:
    assert parse_matcher(r'summary="say \"hi\""').value == 'say "hi"'


def test_double_backslash_is_one_backslash() -> None:
    assert parse_matcher(r'path="C:\\temp"').value == "C:\\temp"


def test_backslash_n_is_a_line_feed() -> None:
    assert parse_matcher(r'summary="one\ntwo"').value == "one\ntwo"


def test_any_other_backslash_is_kept_so_regex_classes_work() -> None:
    matcher = parse_matcher(r'code=~"5\d\d"')
    assert matcher.value == r"5\d\d"
    assert matcher.matches({"code": "503"})


def test_escapes_are_read_in_unquoted_values_too() -> None:
    assert parse_matcher(r"path=C:\\temp\n").value == "C:\\temp\n"


def test_a_backslash_ending_an_unquoted_value_is_kept() -> None:
    assert parse_matcher("path=C:\\").value == "C:\\"


# Canonical text


def test_str_quotes_the_value() -> None:
    assert str(Matcher("severity", "=~", "page|critical")) == 'severity=~"page|critical"'


def test_str_escapes_backslashes_quotes_and_line_feeds() -> None:
    matcher = Matcher("summary", "=", 'a\\b "c"\nd')
    assert str(matcher) == r'summary="a\\b \"c\"\nd"'


@pytest.mark.parametrize(
    "matcher",
    [
        Matcher("severity", "=", "critical"),
        Matcher("env", "!=", ""),
        Matcher("code", "=~", r"5\d\d"),
        Matcher("summary", "!~", 'say "hi"\nand \\ leave '),
    ],
)
def test_str_parses_back_to_the_same_matcher(matcher: Matcher) -> None:
    assert parse_matcher(str(matcher)) == matcher


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,30}", fullmatch=True)
operators = st.sampled_from(["=", "!=", "=~", "!~"])
values = st.text(max_size=100)


@given(label_names, operators, values)
def test_any_matcher_round_trips_through_its_text(name: str, op: Op, text: str) -> None:
    value = re.escape(text) if op in ("=~", "!~") else text
    matcher = Matcher(name, op, value)
    assert parse_matcher(str(matcher)) == matcher


# Syntax errors


def test_syntax_errors_are_value_errors() -> None:
    assert issubclass(MatcherSyntaxError, ValueError)


def test_empty_text_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="empty matcher"):
        parse_matcher("")


def test_blank_text_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="empty matcher"):
        parse_matcher("   ")


def test_a_missing_label_name_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="expected a label name"):
        parse_matcher('="critical"')


def test_a_label_name_starting_with_a_digit_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="expected a label name"):
        parse_matcher('2xx="yes"')


def test_a_missing_operator_is_refused_naming_the_label() -> None:
    message = 'expected one of =, !=, =~, !~ after label name "severity", found nothing'
    with pytest.raises(MatcherSyntaxError, match=re.escape(message)):
        parse_matcher("severity")


def test_an_unknown_operator_is_refused_showing_what_was_found() -> None:
    message = """expected one of =, !=, =~, !~ after label name "severity", found '~"page"'"""
    with pytest.raises(MatcherSyntaxError, match=re.escape(message)):
        parse_matcher('severity ~"page"')


def test_a_character_not_allowed_in_label_names_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match='after label name "team"'):
        parse_matcher('team-name="db"')


def test_an_invalid_regex_is_refused_when_parsed() -> None:
    message = 'invalid regular expression in matcher severity=~"(page": missing ), unterminated'
    with pytest.raises(MatcherSyntaxError, match=re.escape(message)):
        parse_matcher('severity=~"(page"')


def test_an_invalid_regex_is_refused_for_negative_regexes_too() -> None:
    with pytest.raises(MatcherSyntaxError, match="invalid regular expression"):
        parse_matcher('severity!~"*"')


def test_a_regex_like_value_is_fine_for_plain_equality() -> None:
    assert parse_matcher('severity="(page"').matches({"severity": "(page"})


def test_an_unterminated_quote_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="unterminated quoted value"):
        parse_matcher('severity="critical')


def test_an_escaped_final_quote_does_not_terminate_the_value() -> None:
    with pytest.raises(MatcherSyntaxError, match="unterminated quoted value"):
        parse_matcher(r'severity="critical\"')


def test_text_after_the_closing_quote_is_refused() -> None:
    message = "unexpected 'x' after the closing quote"
    with pytest.raises(MatcherSyntaxError, match=re.escape(message)):
        parse_matcher('severity="critical"x')


def test_a_second_quoted_value_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="after the closing quote"):
        parse_matcher('severity="critical" "page"')


def test_a_double_quote_inside_an_unquoted_value_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match=r"unquoted value .* contains a double quote"):
        parse_matcher('summary=say "hi"')


def test_text_of_the_maximum_length_is_accepted() -> None:
    text = "a=" + "x" * (MAX_MATCHER_LENGTH - 2)
    assert len(parse_matcher(text).value) == MAX_MATCHER_LENGTH - 2


def test_text_longer_than_the_maximum_is_refused() -> None:
    text = "a=" + "x" * (MAX_MATCHER_LENGTH - 1)
    with pytest.raises(MatcherSyntaxError, match="at most 1000 are allowed"):
        parse_matcher(text)


def test_building_a_matcher_with_an_invalid_name_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="invalid label name 'team name'"):
        Matcher("team name", "=", "db")


def test_building_a_matcher_with_an_unknown_operator_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="invalid operator '=='"):
        Matcher("team", cast(Op, "=="), "db")


def test_building_a_matcher_with_an_invalid_regex_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="invalid regular expression"):
        Matcher("team", "=~", "[db")


# Several matchers


def test_no_matchers_match_every_label_set() -> None:
    assert matches_all([], {})
    assert matches_all([], ALERT)


def test_all_matchers_satisfied_is_a_match() -> None:
    matchers = [parse_matcher('severity=~"page|critical"'), parse_matcher("team!=web")]
    assert matches_all(matchers, ALERT)


def test_one_matcher_not_satisfied_is_no_match() -> None:
    matchers = [parse_matcher('severity=~"page|critical"'), parse_matcher("team=web")]
    assert not matches_all(matchers, ALERT)

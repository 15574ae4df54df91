"""Alertmanager-style label matchers (`severity="critical"`, `team=~"db|web"`). Pure, no I/O.

Routing and silencing rules are written the way Alertmanager users already write them, so
the semantics follow Alertmanager (`pkg/labels`): an absent label counts as the empty
string, regular expressions must match the whole value, and quoted values use the
OpenMetrics escapes `\\"`, `\\\\` and `\\n`; any other backslash is kept literally, so
`=~"\\d+"` means what it looks like.

Regular expressions use Python's `re` dialect rather than Go's RE2; the two agree on the
constructs matchers use in practice (literals, classes, alternation, repetition, `(?i)`).
They are checked when the matcher is built, so a bad one is refused where it is written
instead of failing later while alerts are routed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

Op = Literal["=", "!=", "=~", "!~"]

MAX_MATCHER_LENGTH = 1000

_OPS: tuple[Op, ...] = get_args(Op)
# Two-character operators first, so that "=~" is not read as "=" followed by "~".
_OPS_LONGEST_FIRST: tuple[Op, ...] = ("=~", "!=", "!~", "=")
_REGEX_OPS: frozenset[str] = frozenset({"=~", "!~"})
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_UNESCAPES = {"n": "\n", '"': '"', "\\": "\\"}
_OPS_TEXT = ", ".join(_OPS)


class MatcherSyntaxError(ValueError):
    """A matcher that cannot be parsed or built; the message says what is wrong."""


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    """The compiled `pattern`, compiled once however many alerts it is matched against."""
    return re.compile(pattern)


@dataclass(frozen=True)
class Matcher:
    """One condition on one label: `name`, operator `op`, `value` (a regex for =~ and !~).

    Built directly or by `parse_matcher`; either way the name and, for regex operators,
    the pattern are validated, so a Matcher that exists can always be matched and printed.
    """

    name: str
    op: Op
    value: str

    def __post_init__(self) -> None:
        """Refuse a bad name, operator or pattern now rather than at match time."""
        if not _LABEL_NAME.fullmatch(self.name):
            raise MatcherSyntaxError(
                f"invalid label name {self.name!r}: it must match [a-zA-Z_][a-zA-Z0-9_]*"
            )
        if self.op not in _OPS:
            raise MatcherSyntaxError(f"invalid operator {self.op!r}: expected one of {_OPS_TEXT}")
        if self.op in _REGEX_OPS:
            try:
                _compiled(self.value)
            except re.error as error:
                raise MatcherSyntaxError(
                    f"invalid regular expression in matcher {self}: {error}"
                ) from error

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this matcher; a missing label reads as ""."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        # Anchored at both ends like Prometheus: fullmatch of the whole pattern, which also
        # lets a leading "(?i)" apply to all of it.
        found = _compiled(self.value).fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        """Canonical text, e.g. `severity=~"page|critical"`; `parse_matcher` reads it back."""
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher such as `severity="critical"`, `team =~ db|web` or `env!=prod`.

    The value may be double-quoted (then only whitespace may follow the closing quote) or
    bare (then it is trimmed and may not contain a double quote). Raises MatcherSyntaxError
    naming the problem.
    """
    if len(text) > MAX_MATCHER_LENGTH:
        raise MatcherSyntaxError(
            f"matcher is {len(text)} characters long; at most {MAX_MATCHER_LENGTH} are allowed"
        )
    stripped = text.strip()
    if not stripped:
        raise MatcherSyntaxError('empty matcher: expected a label, operator and value, e.g. a="b"')

    name_match = _LABEL_NAME.match(stripped)
    if name_match is None:
        raise MatcherSyntaxError(
            f"expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) at the start of matcher {text!r}"
        )
    name = name_match.group()

    rest = stripped[name_match.end() :].lstrip()
    op = next((candidate for candidate in _OPS_LONGEST_FIRST if rest.startswith(candidate)), None)
    if op is None:
        found = f"found {rest!r}" if rest else "found nothing"
        raise MatcherSyntaxError(f'expected one of {_OPS_TEXT} after label name "{name}", {found}')

    return Matcher(name, op, _value(rest[len(op) :].lstrip(), text))


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy every matcher; no matchers match every label set."""
    return all(matcher.matches(labels) for matcher in matchers)


def _value(raw: str, text: str) -> str:
    """The unescaped value from `raw`, the trimmed text after the operator."""
    quoted = raw.startswith('"')
    chars: list[str] = []
    index = 1 if quoted else 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            following = raw[index + 1]
            chars.append(_UNESCAPES.get(following, "\\" + following))
            index += 2
            continue
        if char == '"':
            if not quoted:
                raise MatcherSyntaxError(
                    f"unquoted value in matcher {text!r} contains a double quote; "
                    'quote the whole value and write \\" for a literal quote'
                )
            trailing = raw[index + 1 :].strip()
            if trailing:
                raise MatcherSyntaxError(
                    f"unexpected {trailing!r} after the closing quote in matcher {text!r}"
                )
            return "".join(chars)
        chars.append(char)
        index += 1
    if quoted:
        raise MatcherSyntaxError(f"unterminated quoted value in matcher {text!r}: no closing quote")
    return "".join(chars)

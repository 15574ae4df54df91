"""Entity tags and `If-Match` (RFC 9110, sections 8.8.3 and 13.1.1), with no I/O.

A resource's entity tag is its row version, quoted: version 3 is the strong tag `"3"`.
`If-Match` compares with the *strong* function: a weak tag (`W/"3"`) never matches, since
it only claims "semantically equivalent", which is not enough to decide whether a write
may overwrite what is there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WEAK_PREFIX = "W/"


class MalformedConditionError(ValueError):
    """A conditional header that the grammar of RFC 9110 does not allow."""


@dataclass(frozen=True)
class EntityTag:
    """One entity tag: its opaque value (without the quotes) and whether it is weak."""

    opaque: str
    weak: bool = False

    def __str__(self) -> str:
        return f'{WEAK_PREFIX if self.weak else ""}"{self.opaque}"'


@dataclass(frozen=True)
class Condition:
    """A parsed `If-Match`: `*` (any current representation) or a list of tags."""

    any: bool
    tags: tuple[EntityTag, ...] = ()

    def __str__(self) -> str:
        return "*" if self.any else ", ".join(str(tag) for tag in self.tags)


def etag_of(version: int) -> str:
    """The `ETag` header value of a resource at `version` (a strong tag)."""
    return str(EntityTag(str(version)))


def allows(condition: Condition, version: int) -> bool:
    """Whether `If-Match: condition` holds for an existing resource at `version`.

    RFC 9110 13.1.1: `*` holds for any current representation; otherwise one of the tags
    must be strongly equal to the current one (both strong, same opaque value).
    """
    if condition.any:
        return True
    current = str(version)
    return any(not tag.weak and tag.opaque == current for tag in condition.tags)


def parse_condition(values: Iterable[str], header: str = "If-Match") -> Condition:
    """Parse the field lines of `If-Match` (several lines are one comma-separated list).

    Grammar: `"*" / #entity-tag`; `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`, where
    `etagc` is any visible character but `"` (and obs-text). Empty list elements are
    allowed (RFC 9110 5.6.1), an empty field as a whole is not: it states no condition.
    Raises `MalformedConditionError` naming what is wrong.
    """
    text = ",".join(values)
    tags: list[EntityTag] = []
    saw_star = False
    position = 0
    length = len(text)
    while position < length:
        char = text[position]
        if char in " \t,":
            position += 1
            continue
        if char == "*":
            saw_star = True
            position += 1
        else:
            tag, position = _entity_tag(text, position, header)
            tags.append(tag)
        # After an element: optional whitespace, then a comma or the end.
        while position < length and text[position] in " \t":
            position += 1
        if position < length and text[position] != ",":
            raise MalformedConditionError(
                f"{header}: expected a comma after an element at character {position + 1}"
            )
    if saw_star and tags:
        raise MalformedConditionError(f'{header}: "*" cannot be combined with entity tags')
    if saw_star:
        return Condition(any=True)
    if not tags:
        raise MalformedConditionError(f'{header} is empty; send "*" or quoted entity tags')
    return Condition(any=False, tags=tuple(tags))


def _entity_tag(text: str, position: int, header: str) -> tuple[EntityTag, int]:
    """The entity tag that starts at `position`, and the position just after it."""
    weak = text.startswith(WEAK_PREFIX, position)
    if weak:
        position += len(WEAK_PREFIX)
    if position >= len(text) or text[position] != '"':
        raise MalformedConditionError(
            f'{header}: an entity tag is quoted, e.g. "3" (got {_excerpt(text, position)})'
        )
    end = text.find('"', position + 1)
    if end < 0:
        raise MalformedConditionError(f"{header}: an entity tag is missing its closing quote")
    opaque = text[position + 1 : end]
    if any(not _is_etagc(char) for char in opaque):
        raise MalformedConditionError(
            f"{header}: an entity tag holds visible characters only (no spaces or controls)"
        )
    return EntityTag(opaque, weak), end + 1


def _is_etagc(char: str) -> bool:
    """`etagc = %x21 / %x23-7E / obs-text` (obs-text: %x80-FF, as a header's latin-1)."""
    code = ord(char)
    return code == 0x21 or 0x23 <= code <= 0x7E or 0x80 <= code <= 0xFF


def _excerpt(text: str, position: int) -> str:
    shown = text[position : position + 20]
    return repr(shown) if shown else "nothing"

"""Similar past incidents by text: TF-IDF over title, description, root cause and log
templates, with cosine similarity. Pure logic; a few thousand short documents take
milliseconds, so no model and no download is needed, and it works offline.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

TOKEN = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
# Words that say nothing about what broke.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "was",
        "were",
        "with",
    ]
)


@dataclass(frozen=True)
class Document:
    """A past incident's text."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Match:
    """A similar incident and how similar, in [0, 1]."""

    id: str
    title: str
    similarity: float


def tokens(text: str) -> list[str]:
    """Lower-case words and identifiers (`connection-pool`, `oom`), stop words removed."""
    return [word for word in TOKEN.findall(text.lower()) if word not in STOP_WORDS]


def most_similar(
    query: str, documents: Sequence[Document], *, limit: int = 5, minimum: float = 0.1
) -> list[Match]:
    """The documents most like `query`, best first; none under `minimum`."""
    if not documents:
        return []
    counted = [Counter(tokens(f"{doc.title} {doc.text}")) for doc in documents]
    frequency: Counter[str] = Counter()
    for counts in counted:
        frequency.update(counts.keys())
    total = len(documents) + 1

    def weights(counts: Counter[str]) -> dict[str, float]:
        vector = {
            word: (1 + math.log(count)) * (math.log(total / (1 + frequency[word])) + 1)
            for word, count in counts.items()
        }
        norm = math.sqrt(sum(value * value for value in vector.values())) or 1.0
        return {word: value / norm for word, value in vector.items()}

    wanted = weights(Counter(tokens(query)))
    matches = []
    for doc, counts in zip(documents, counted, strict=True):
        vector = weights(counts)
        similarity = sum(value * vector.get(word, 0.0) for word, value in wanted.items())
        if similarity >= minimum:
            matches.append(Match(doc.id, doc.title, round(similarity, 4)))
    matches.sort(key=lambda match: (-match.similarity, match.id))
    return matches[:limit]

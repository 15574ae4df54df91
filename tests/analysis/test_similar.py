"""Specification of similar past incidents (TF-IDF over their text)."""

from __future__ import annotations

from reliability_studio.analysis.similar import Document, most_similar, tokens

PAST = [
    Document(
        "1", "Checkout database connection pool exhausted", "too many connections to postgres"
    ),
    Document("2", "Search latency after deploy", "new index slowed queries"),
    Document("3", "Payment provider timeouts", "stripe API timing out"),
]


def test_the_incident_sharing_the_rare_words_comes_first() -> None:
    matches = most_similar("postgres connection pool exhausted on checkout", PAST)
    assert matches[0].id == "1"
    assert 0 < matches[0].similarity <= 1


def test_unrelated_incidents_are_left_out() -> None:
    assert [m.id for m in most_similar("postgres connection pool exhausted", PAST)] == ["1"]


def test_no_past_incidents_gives_nothing() -> None:
    assert most_similar("anything", []) == []


def test_the_limit_is_respected() -> None:
    many = [Document(str(i), "disk full on node", "disk full") for i in range(10)]
    assert len(most_similar("disk full", many, limit=3)) == 3


def test_stop_words_and_case_do_not_count() -> None:
    assert tokens("The Pool IS exhausted") == ["pool", "exhausted"]
    assert tokens("connection-pool OOMKilled") == ["connection-pool", "oomkilled"]

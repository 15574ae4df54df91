"""Specification of the token cache's rules: what it keeps, and when it must forget."""

from __future__ import annotations

from reliability_studio.identity.token_cache import TokenCache

HASH = "a" * 64
ROW = ("the token's row",)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def listening_cache(limit: int = 10_000) -> TokenCache:
    cache = TokenCache(limit=limit)
    cache.listening()
    return cache


def test_a_row_kept_while_listening_is_given_back() -> None:
    cache = listening_cache()
    cache.keep(cache.ticket(), HASH, ROW)
    assert cache.get(HASH) == ROW


def test_a_cache_that_has_never_listened_keeps_nothing() -> None:
    cache = TokenCache()
    cache.keep(cache.ticket(), HASH, ROW)
    cache.listening()
    assert cache.get(HASH) is None


def test_hearing_of_a_change_forgets_every_token() -> None:
    cache = listening_cache()
    cache.keep(cache.ticket(), HASH, ROW)
    cache.keep(cache.ticket(), "b" * 64, ROW)
    cache.heard()
    assert cache.get(HASH) is None
    assert cache.get("b" * 64) is None


def test_a_look_up_that_began_before_a_change_is_not_kept() -> None:
    cache = listening_cache()
    ticket = cache.ticket()  # the look-up starts, and reads the row as it was
    cache.heard()  # the change commits while the row is on its way
    cache.keep(ticket, HASH, ROW)
    assert cache.get(HASH) is None


def test_a_look_up_that_began_after_a_change_is_kept() -> None:
    cache = listening_cache()
    cache.heard()
    cache.keep(cache.ticket(), HASH, ROW)
    assert cache.get(HASH) == ROW


def test_losing_the_listener_forgets_and_stops_giving_rows_back() -> None:
    cache = listening_cache()
    cache.keep(cache.ticket(), HASH, ROW)
    cache.deaf()
    assert cache.get(HASH) is None
    assert cache.ticket() is None


def test_a_look_up_that_began_while_deaf_is_not_kept_once_listening_again() -> None:
    cache = listening_cache()
    cache.deaf()
    ticket = cache.ticket()
    cache.listening()
    cache.keep(ticket, HASH, ROW)
    assert cache.get(HASH) is None


def test_listening_again_starts_from_nothing() -> None:
    cache = listening_cache()
    cache.keep(cache.ticket(), HASH, ROW)
    cache.listening()  # a reconnect: what changed meanwhile went unheard
    assert cache.get(HASH) is None


def test_a_row_is_dropped_once_it_is_as_old_as_the_ttl() -> None:
    clock = Clock()
    cache = TokenCache(ttl_seconds=10.0, clock=clock)
    cache.listening()
    cache.keep(cache.ticket(), HASH, ROW)
    clock.now += 9.9
    assert cache.get(HASH) == ROW
    clock.now += 0.1
    assert cache.get(HASH) is None


def test_the_cache_is_bounded() -> None:
    cache = listening_cache(limit=2)
    for n in range(3):
        cache.keep(cache.ticket(), f"{n}" * 64, ROW)
    assert len([n for n in range(3) if cache.get(f"{n}" * 64) is not None]) <= 2
    assert cache.get("2" * 64) == ROW  # the newest is kept

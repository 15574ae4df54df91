"""A process's memory of the API tokens it has checked, so that a request need not look its
token up in the database every time (on PostgreSQL).

The look-up was a second round trip on every request, and a quarter of a one-incident
GET's CPU. Remembering a token is safe only while the process is sure to hear of any change
that could end it, so:

- PostgreSQL tells every process, at the commit, of every change to tokens, users,
  memberships and service accounts, however it was made (triggers of migration 0012,
  heard on the live bus's connection): each process then forgets every token at once;
- the process that commits such a change through the ORM forgets at its own commit,
  without waiting to hear it back (`install_forgetting`);
- while the listener is not connected nothing is remembered or used, and on (re)connecting
  everything is forgotten, as changes made meanwhile went unheard;
- a look-up that began before a change is not kept when it ends after it (a ticket);
- and any entry is dropped after `ttl_seconds`, whatever happens.

What is remembered is the token's row, not a verdict: revocation, expiry and its owner are
checked again at every use. On SQLite there is one API process and no cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from reliability_studio.db.engine import add_session_info
from reliability_studio.identity.models import ApiToken, Membership, ServiceAccount, User
from reliability_studio.organizations.models import Organization

CREDENTIALS_CHANNEL = "reliability_studio_credentials"  # migration 0012's NOTIFY
DEFAULT_TTL_SECONDS = 10.0
DEFAULT_LIMIT = 10_000
CACHE_KEY = "token_cache"
_CHANGED_KEY = "token_cache_changed"
# A change to one of these may end a token; deleting an organization cascades to its tokens.
_CREDENTIALS = (ApiToken, User, Membership, ServiceAccount, Organization)


class TokenCache:
    """Token rows by the token's hash, kept while this process can hear of their changes."""

    channel = CREDENTIALS_CHANNEL

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        limit: int = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.limit = limit
        self._clock = clock
        self._rows: dict[str, tuple[float, Any]] = {}
        self._generation = 0
        self._listening = False

    def get(self, token_hash: str) -> Any | None:
        """The remembered row of a token, or None (not remembered, too old, or deaf)."""
        if not self._listening:
            return None
        kept = self._rows.get(token_hash)
        if kept is None:
            return None
        if self._clock() - kept[0] >= self.ttl_seconds:
            del self._rows[token_hash]
            return None
        return kept[1]

    def ticket(self) -> int | None:
        """Taken before a look-up: `keep` refuses its row if a change was heard meanwhile.
        None while deaf."""
        return self._generation if self._listening else None

    def keep(self, ticket: int | None, token_hash: str, row: Any) -> None:
        """Remember a token's row, read from the database under `ticket`."""
        # Becoming deaf (or listening again) moves the generation on, so a ticket taken
        # before that is refused here like one taken before a change.
        if ticket != self._generation:
            return
        if len(self._rows) >= self.limit:
            self._rows.clear()
        self._rows[token_hash] = (self._clock(), row)

    def forget_all(self) -> None:
        """Forget every token, and refuse the rows of look-ups already under way."""
        self._generation += 1
        self._rows.clear()

    # What the live bus calls (see `live.bus.Watcher`).
    def heard(self) -> None:
        """PostgreSQL said credentials changed."""
        self.forget_all()

    def listening(self) -> None:
        """The listener is connected: from now on every change will be heard."""
        self.forget_all()
        self._listening = True

    def deaf(self) -> None:
        """The listener is gone: changes may go unheard, so remember nothing."""
        self._listening = False
        self.forget_all()


def install_forgetting(sessionmaker: async_sessionmaker[AsyncSession], cache: TokenCache) -> None:
    """Make `cache` forget every token when a session of `sessionmaker` commits a change to
    credentials, before the commit's NOTIFY comes back."""
    add_session_info(sessionmaker, CACHE_KEY, cache)


@event.listens_for(Session, "after_flush")
def _note(session: Session, _context: Any) -> None:
    if CACHE_KEY in session.info and any(
        isinstance(changed, _CREDENTIALS) for changed in chain(session.dirty, session.deleted)
    ):
        session.info[_CHANGED_KEY] = True


# No hook on rollback: a change rolled back (even to a savepoint) only makes the next commit
# forget for nothing, which costs one look-up per token; missing a change would cost more.
@event.listens_for(Session, "after_commit")
def _forget(session: Session) -> None:
    if session.info.pop(_CHANGED_KEY, False):
        session.info[CACHE_KEY].forget_all()

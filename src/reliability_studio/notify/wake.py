"""Wake the dispatcher of this process when a commit adds notifications.

Without it a new notification waits for the dispatcher's next poll (NOTIFY_POLL_SECONDS).
Sessions of a sessionmaker set up with `install_wake` note when a flush writes outbox rows,
and call the wake-up once the commit has succeeded. A rolled-back transaction wakes nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from reliability_studio.db.engine import add_session_info
from reliability_studio.notify.models import Notification

WAKE_KEY = "notify_wake"
_PENDING_KEY = "notify_pending"


def install_wake(sessionmaker: async_sessionmaker[AsyncSession], wake: Callable[[], None]) -> None:
    """Call `wake` after each commit of a `sessionmaker` session that added notifications."""
    add_session_info(sessionmaker, WAKE_KEY, wake)


@event.listens_for(Session, "after_flush")
def _note(session: Session, _context: Any) -> None:
    if WAKE_KEY in session.info and any(isinstance(o, Notification) for o in session.new):
        session.info[_PENDING_KEY] = True


@event.listens_for(Session, "after_commit")
def _wake(session: Session) -> None:
    if session.info.pop(_PENDING_KEY, False):
        session.info[WAKE_KEY]()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)

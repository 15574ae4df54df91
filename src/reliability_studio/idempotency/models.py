"""The idempotency_keys table: one row per `Idempotency-Key` a caller has used in 24 h.

A row goes through these states:

- `in_progress`: reserved by the request that carries it out (`lock_id` says which);
- `applied`: that request's write has been committed (marked in the write's own
  transaction), its response is not recorded yet;
- `completed`: the response is recorded and is what every retry gets;
- `withheld`: carried out, but the response is not kept (it holds a secret, is too big,
  or the request failed after its write committed).

A request that fails without having written anything deletes its row, so that a retry is
carried out afresh.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import Base, JSONDocument, UUIDPrimaryKey, one_of, utcnow

IN_PROGRESS, APPLIED, COMPLETED, WITHHELD = "in_progress", "applied", "completed", "withheld"
STATES = (IN_PROGRESS, APPLIED, COMPLETED, WITHHELD)

KEY_LENGTH = 255
PRINCIPAL_LENGTH = 200
PATH_LENGTH = 500


class IdempotencyKey(UUIDPrimaryKey, Base):
    """One key of one caller in one organization, and what became of its request."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # The reservation: a second request with the key finds this row and does not run.
        UniqueConstraint("organization_id", "principal", "key"),
        CheckConstraint(one_of("state", STATES), name="state"),
    )

    # Keys are the caller's own: scoped to the organization and the principal acting in it.
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    principal: Mapped[str] = mapped_column(String(PRINCIPAL_LENGTH))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    # SHA-256 of the method, path, query and body: a retry must be the same request.
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    state: Mapped[str] = mapped_column(String(16))
    # Which request holds the reservation, and since when (a lease: see `rules.LEASE`).
    lock_id: Mapped[uuid.UUID]
    locked_at: Mapped[datetime]
    response_status: Mapped[int | None]
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSONDocument)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Keys are kept for `rules.RETENTION` from here; the purge uses the index.
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None]

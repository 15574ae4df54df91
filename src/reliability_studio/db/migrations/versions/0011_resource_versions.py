"""resource versions

Every resource a client can change or delete (`PATCH`, `DELETE`) gets a `version`: the
counter behind its `ETag` and `If-Match` (optimistic concurrency). Existing rows start at
version 1, as new ones do; the ORM moves it on every update (see `db.base.Versioned`).

Revision ID: 0011
Revises: 0010_idempotency_keys
Create Date: 2026-11-27 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010_idempotency_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED_TABLES = (
    "organizations",
    "services",
    "incidents",
    "incident_tasks",
    "slos",
    "correlation_rules",
    "notification_channels",
    "notification_policies",
    "memberships",
    "service_accounts",
    "api_tokens",
)


def upgrade() -> None:
    for table in VERSIONED_TABLES:
        # NOT NULL with a constant server default: the database backfills every existing
        # row with 1 in the same statement, so no row is ever without a version. The default
        # is a plain string, not `sa.text()`, on purpose: with an SQL expression, batch mode
        # would rebuild the SQLite table (copy, DROP, rename), and with foreign keys on,
        # dropping a table others refer to fails (RESTRICT: `organizations`) or deletes their
        # rows (CASCADE: the timeline and tasks of `incidents`). A constant lets SQLite add
        # the column in place (ALTER TABLE ... ADD COLUMN).
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("version", sa.Integer(), server_default="1", nullable=False)
            )


def downgrade() -> None:
    # Not batch mode, for the same reason: SQLite 3.35+ drops a column in place, where a
    # batch rebuild would drop these tables (failing on RESTRICT, cascading on CASCADE).
    for table in reversed(VERSIONED_TABLES):
        op.drop_column(table, "version")

"""oidc login flows

The short-lived state of single sign-on: `login_flows` (from the redirect to the identity
provider to its callback) and `cli_login_codes` (from the callback of a CLI login to the
CLI's token exchange). Only hashes of the values a caller presents are stored.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 22:48:12.182013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_flows",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("return_to", sa.String(length=500), nullable=True),
        sa.Column("cli_port", sa.Integer(), nullable=True),
        sa.Column("cli_challenge", sa.String(length=128), nullable=True),
        sa.Column("cli_state", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_flows")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_login_flows_state_hash")),
    )
    with op.batch_alter_table("login_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_flows_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "cli_login_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_cli_login_codes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_cli_login_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cli_login_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_cli_login_codes_code_hash")),
    )
    with op.batch_alter_table("cli_login_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cli_login_codes_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cli_login_codes_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cli_login_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cli_login_codes_user_id"))
        batch_op.drop_index(batch_op.f("ix_cli_login_codes_expires_at"))

    op.drop_table("cli_login_codes")
    with op.batch_alter_table("login_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_flows_expires_at"))

    op.drop_table("login_flows")

"""credentials changed: PostgreSQL tells every API process when a token may no longer hold

Each API process remembers the tokens it has checked for a few seconds
(`identity/token_cache.py`), so that a request does not look its token up every time. It
may do so only because PostgreSQL tells it, at the commit, of every change that could end
a token's validity: an update or delete of a token (other than the once-a-minute
`last_used_at` bookkeeping), a user, a membership or a service account, however it was
made (the API, the CLI, or an operator's SQL). Deleting an organization cascades to its
memberships and tokens, which fires their triggers. Inserts cannot end a valid token.

On SQLite there is one API process, which forgets at its own commits: nothing to install.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 17:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "reliability_studio_credentials"
FUNCTION = "reliability_studio_credentials_changed"
OWNER_TABLES = ("users", "memberships", "service_accounts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    # Row by row, to tell the bookkeeping of `last_used_at` from a real change.
    op.execute(
        f"""
        CREATE TRIGGER credentials_changed AFTER UPDATE ON api_tokens FOR EACH ROW
        WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
        EXECUTE FUNCTION {FUNCTION}()
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER credentials_removed AFTER DELETE OR TRUNCATE ON api_tokens
        FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()
        """
    )
    for table in OWNER_TABLES:
        op.execute(
            f"""
            CREATE TRIGGER credentials_changed AFTER UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER credentials_changed ON api_tokens")
    op.execute("DROP TRIGGER credentials_removed ON api_tokens")
    for table in OWNER_TABLES:
        op.execute(f"DROP TRIGGER credentials_changed ON {table}")
    op.execute(f"DROP FUNCTION {FUNCTION}()")

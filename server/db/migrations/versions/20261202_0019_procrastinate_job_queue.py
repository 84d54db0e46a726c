"""procrastinate job queue: the schema of the queue that durable background jobs run on (PostgreSQL only)

Cuts run as procrastinate jobs on PostgreSQL (server/jobs.py); procrastinate keeps its
queue in its own tables, functions and triggers (procrastinate_jobs, ...), created
here from the SQL the pinned procrastinate release ships, so `canvass db upgrade`
is all a deployment needs. SQLite runs jobs in the web process and needs nothing.
A later procrastinate release that changes its schema needs a migration here that
applies its files from procrastinate/sql/migrations/.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-02 14:50:00

"""
from collections.abc import Sequence

from alembic import op
from sqlalchemy.util import await_only

# revision identifiers, used by Alembic.
revision: str = '0019'
down_revision: str | Sequence[str] | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _execute_script(sql: str) -> None:
    """Run a multi-statement script on the migration's own connection (and transaction).

    asyncpg runs a script with no arguments over the simple query protocol, which
    allows several statements and the $$-quoted function bodies in it."""
    driver = op.get_bind().connection.dbapi_connection.driver_connection  # type: ignore[union-attr]
    await_only(driver.execute(sql))


def upgrade() -> None:
    """Create procrastinate's schema on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    _execute_script(SchemaManager.get_schema())


def downgrade() -> None:
    """Drop every procrastinate table, function and type."""
    if op.get_bind().dialect.name != "postgresql":
        return
    _execute_script("""
    DO $$
    DECLARE r record;
    BEGIN
      FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename);
      END LOOP;
      FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.sig);
      END LOOP;
      FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
               WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%' AND t.typtype IN ('e', 'c') LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
      END LOOP;
    END $$;
    """)

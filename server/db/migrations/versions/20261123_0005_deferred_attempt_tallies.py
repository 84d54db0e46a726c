"""deferred attempt tallies on PostgreSQL

Why: the row-level trigger of migration 0003 ran five upserts per contact
attempt inside the pushing transaction, and three of them hit the same few
rows (the campaign's group tally, the current hour): every push of a campaign
queued behind the others on those row locks, and a raw INSERT managed about
500 rows/s. Now, on PostgreSQL, inserting an attempt only queues its id in
``result_pending`` (one statement-level trigger per INSERT statement) and
``server.results.tallies.fold_result_tallies`` folds the queue into the
tallies set-based, under one advisory lock, before every read of them and
every few seconds in the background. Deletes and updates of attempts (erasure,
retention, corrections: rare) keep their row-level trigger, which now takes
back only what was folded: an attempt still queued is simply dequeued (and an
updated one re-queued), under the same advisory lock so it never races a fold.

SQLite keeps migration 0003's triggers: its writers are serialised anyway and
the trigger runs in process, so there is no lock convoy to remove; the queue
tables exist there too (same schema everywhere) and stay empty.

The trigger SQL is frozen here, built from migration 0003's frozen helpers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 01:40:00

"""
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLD_LOCK = 0x43414E56  # pg advisory lock key shared with server.results.tallies.FOLD_LOCK ("CANV")


def _m0003():
    path = Path(__file__).with_name("20261122_0003_results_tallies_and_follow_ups.py")
    spec = importlib.util.spec_from_file_location("canvass_migration_0003", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pg_statements() -> list[str]:
    m = _m0003()
    take_back = ";\n  ".join(m._attempt_statements("OLD", "-1", True))
    return [
        "DROP TRIGGER IF EXISTS trg_results_attempt ON contact_attempts",
        "CREATE OR REPLACE FUNCTION results_attempt_queue() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n"
        "  INSERT INTO result_pending (attempt_id) SELECT id FROM new_rows ON CONFLICT DO NOTHING;\n"
        "  RETURN NULL;\n"
        "END\n$fn$",
        "CREATE OR REPLACE FUNCTION results_attempt_tally() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n"
        f"  PERFORM pg_advisory_xact_lock({FOLD_LOCK});\n"
        "  DELETE FROM result_pending WHERE attempt_id = OLD.id;\n"
        "  IF NOT FOUND THEN\n"
        f"  {take_back};\n"
        "  END IF;\n"
        "  IF TG_OP = 'UPDATE' THEN\n"
        "    INSERT INTO result_pending (attempt_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END\n$fn$",
        "CREATE TRIGGER trg_results_attempt_queue AFTER INSERT ON contact_attempts "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION results_attempt_queue()",
        "CREATE TRIGGER trg_results_attempt AFTER DELETE OR UPDATE OF campaign_id, address_id, walk_list_id, "
        "user_id, outcome, at, received_at ON contact_attempts FOR EACH ROW EXECUTE FUNCTION results_attempt_tally()",
    ]


def _pg_downgrade() -> list[str]:
    m = _m0003()
    # fold what is queued the slow, exact way (rebuild from events), then restore 0003's trigger
    return [
        "DROP TRIGGER IF EXISTS trg_results_attempt_queue ON contact_attempts",
        "DROP TRIGGER IF EXISTS trg_results_attempt ON contact_attempts",
        "DROP FUNCTION IF EXISTS results_attempt_queue()",
        "DELETE FROM result_door_tally", "DELETE FROM result_group_tally", "DELETE FROM result_hour_tally",
        *[s.replace("{hour_r}", m.PG_HOUR.format(r="r")) for s in m.BACKFILL[:5]],
        m.POSTGRES_TRIGGERS[0],
        m.POSTGRES_TRIGGERS[4],
    ]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('result_pending',
    sa.Column('attempt_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('attempt_id', name=op.f('pk_result_pending'))
    )
    op.create_table('result_fold_batch',
    sa.Column('attempt_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('attempt_id', name=op.f('pk_result_fold_batch'))
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _pg_statements():
            op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        for statement in _pg_downgrade():
            op.execute(statement)
    op.drop_table('result_fold_batch')
    op.drop_table('result_pending')

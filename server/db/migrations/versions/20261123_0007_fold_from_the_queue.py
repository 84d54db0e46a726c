"""the fold reads the queue, not the attempts: the queue carries the columns the tallies need

Why: measured with bench.sync, the background fold of migration 0005 cost
PostgreSQL about 2.4 of its 9.4 CPU milliseconds per 100-mutation push. Per
attempt it queued the id, moved it to ``result_fold_batch`` (an insert and a
delete more) and then looked the attempt up by primary key once per fold
statement (five times). Now the queue trigger copies, from the statement's
transition table, the seven columns the tallies read, and the fold is one
statement: ``DELETE FROM result_pending RETURNING *`` feeding every tally
upsert as data-modifying CTEs (server/results/tallies.py). All of them see one
snapshot, which is what the group tallies need: whether a door was knocked
before this batch. ``result_fold_batch`` is gone.

Re-queueing an updated attempt (the row trigger) copies NEW's columns the same
way. Rows queued before this migration get their columns from the attempts.
SQLite: the columns exist there too (same schema everywhere); its tallies keep
migration 0003's triggers and the queue stays empty.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 05:40:00

"""
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLD_LOCK = 0x43414E56  # pg advisory lock key shared with server.results.tallies.FOLD_LOCK ("CANV")
QUEUED = ("campaign_id", "address_id", "walk_list_id", "user_id", "outcome", "at", "received_at")


def _migration(filename: str, name: str):
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tally_function(requeue: str) -> str:
    take_back = ";\n  ".join(
        _migration("20261122_0003_results_tallies_and_follow_ups.py", "canvass_migration_0003")
        ._attempt_statements("OLD", "-1", True))
    return (
        "CREATE OR REPLACE FUNCTION results_attempt_tally() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n"
        f"  PERFORM pg_advisory_xact_lock({FOLD_LOCK});\n"
        "  DELETE FROM result_pending WHERE attempt_id = OLD.id;\n"
        "  IF NOT FOUND THEN\n"
        f"  {take_back};\n"
        "  END IF;\n"
        "  IF TG_OP = 'UPDATE' THEN\n"
        f"    {requeue};\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END\n$fn$"
    )


def _pg_statements() -> list[str]:
    columns = ", ".join(QUEUED)
    return [
        f"UPDATE result_pending p SET ({columns}) = "
        f"(SELECT {', '.join('c.' + c for c in QUEUED)} FROM contact_attempts c WHERE c.id = p.attempt_id)",
        "DELETE FROM result_pending WHERE campaign_id IS NULL",
        "CREATE OR REPLACE FUNCTION results_attempt_queue() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n"
        f"  INSERT INTO result_pending (attempt_id, {columns}) SELECT id, {columns} FROM new_rows ON CONFLICT DO NOTHING;\n"
        "  RETURN NULL;\n"
        "END\n$fn$",
        _tally_function(
            f"INSERT INTO result_pending (attempt_id, {columns}) "
            f"VALUES (NEW.id, {', '.join('NEW.' + c for c in QUEUED)}) ON CONFLICT DO NOTHING"),
    ]


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('result_pending', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('address_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('walk_list_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        for statement in _pg_statements():
            op.execute(statement)
    op.drop_table('result_fold_batch')


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table('result_fold_batch',
    sa.Column('attempt_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('attempt_id', name=op.f('pk_result_fold_batch'))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION results_attempt_queue() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
            "BEGIN\n"
            "  INSERT INTO result_pending (attempt_id) SELECT id FROM new_rows ON CONFLICT DO NOTHING;\n"
            "  RETURN NULL;\n"
            "END\n$fn$")
        op.execute(_tally_function(
            "INSERT INTO result_pending (attempt_id) VALUES (NEW.id) ON CONFLICT DO NOTHING"))
    with op.batch_alter_table('result_pending', schema=None) as batch_op:
        for column in reversed(QUEUED):
            batch_op.drop_column(column)

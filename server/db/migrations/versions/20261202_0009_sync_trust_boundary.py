"""sync trust boundary: kept mutations, untrusted event times, device token ids

Why (issue 13):

* ``held_mutations``: every mutation a push did not apply as sent (rejected,
  ``restamp``, a conflicting duplicate of an event id, a repeated seq) keeps its
  full payload here, with its review state, so an organiser can re-apply, edit
  then apply, or dismiss it. ``mutation_results`` stays the per-seq receipt.
* ``time_untrusted`` on the three event tables: an event stamped further ahead
  than the skew bound is stored as sent and marked, with the server's
  ``received_at`` beside it; it is never refused for its clock.
* ``devices.token_jti``: the id of the device's current token, so re-registering
  an install (same node id) can revoke the tokens issued before.

* PostgreSQL: an erasure fence on ``contact_attempts`` and ``answers``. Erasure
  (``server.sync.erasure``) takes the campaign's advisory lock (migration 0008's class)
  exclusively before it reads anything; an insert statement's campaign check takes it
  shared. This statement trigger runs after that check: once it holds the lock, any
  erasure that ran meanwhile has committed, and its DELETE (a new snapshot) removes the
  rows this statement inserted about a person or address that no longer exists, as if the
  push had come first and the erasure after it. Why not row locks in the push: locking
  each named person and address (FOR KEY SHARE) wrote every locked tuple and doubled
  PostgreSQL's CPU per push in bench.sync.

Write scope reads the assignment history already kept in ``assignments``
(``assigned_at``, ``ended_at``: rows are ended, never deleted, on reassignment).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 11:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TABLES = ("contact_attempts", "answers", "observations")
FENCED = ("contact_attempts", "answers")
CAMPAIGN_LOCK = 0x43414D50  # migration 0008's advisory lock class of a campaign's events

FENCE = f"""CREATE OR REPLACE FUNCTION events_erasure_fence() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_advisory_xact_lock_shared({CAMPAIGN_LOCK}, c) FROM (SELECT DISTINCT campaign_id AS c FROM new_rows) d;
  -- static statements (plans cached per session), not EXECUTE (planned on every push)
  IF TG_TABLE_NAME = 'answers' THEN
    DELETE FROM answers t USING new_rows n WHERE t.id = n.id AND (
      NOT EXISTS (SELECT 1 FROM addresses a WHERE a.id = n.address_id)
      OR (n.person_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM people p WHERE p.id = n.person_id)));
  ELSE
    DELETE FROM contact_attempts t USING new_rows n WHERE t.id = n.id AND (
      NOT EXISTS (SELECT 1 FROM addresses a WHERE a.id = n.address_id)
      OR (n.person_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM people p WHERE p.id = n.person_id)));
  END IF;
  RETURN NULL;
END
$fn$"""


def upgrade() -> None:
    op.create_table(
        "held_mutations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("op", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("entity", sa.String(24), nullable=True),
        sa.Column("entity_id", sa.String(40), nullable=True),
        sa.Column("address_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("review", sa.String(16), nullable=False, server_default="open"),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_mutations")),
    )
    op.create_index("ix_held_mutations_campaign_review", "held_mutations", ["campaign_id", "review"])
    # plain ADD COLUMN (no batch copy on SQLite: recreating a table would drop its result triggers)
    for table in EVENT_TABLES:
        op.add_column(table, sa.Column("time_untrusted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("devices", sa.Column("token_jti", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FENCE)
        for table in FENCED:  # fires after trg_<table>_campaign_insert (triggers run in name order)
            op.execute(f"CREATE TRIGGER trg_{table}_erasure_fence AFTER INSERT ON {table} "
                       "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION events_erasure_fence()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in FENCED:
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_erasure_fence ON {table}")
        op.execute("DROP FUNCTION IF EXISTS events_erasure_fence()")
    op.drop_column("devices", "token_jti")  # SQLite 3.35+ drops columns in place
    for table in EVENT_TABLES:
        op.drop_column(table, "time_untrusted")
    op.drop_index("ix_held_mutations_campaign_review", table_name="held_mutations")
    op.drop_table("held_mutations")

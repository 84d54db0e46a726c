"""PostgreSQL: the events' campaign foreign key checked once per statement, not once per row

Why: auto_explain of a 100-attempt push put the foreign-key trigger of
``contact_attempts.campaign_id`` at 2.1 of the statement's 6.4 ms (100 calls,
each an SPI query locking the campaign row FOR KEY SHARE). In alternating
bench.sync runs without it, PostgreSQL did 11,279 and 11,490 mutations/s
against 9,170 and 9,474 with it.

The rule stays the same, enforced set-based by statement-level triggers
(PostgreSQL only; SQLite keeps the declared foreign keys, whose checks are
cheap in process):

* INSERT or UPDATE on ``contact_attempts`` / ``answers``: a shared advisory
  lock per campaign the statement's rows name, then a row naming no campaign
  raises ``foreign_key_violation``.
* DELETE of a campaign: an exclusive advisory lock per deleted campaign, which
  waits for every writer of its events that has not committed yet, then its
  attempts and answers are deleted (the foreign key's ON DELETE CASCADE).

Why advisory locks and not FOR KEY SHARE on the campaign row, as the foreign
key did: every push of a campaign locks that one row, and concurrent share
locks on a row make PostgreSQL write a new MultiXact into the tuple each time
(a buffer lock, WAL and SLRU traffic per push); the lock manager's shared
locks cost none of that. A writer that comes after a deleter waits for it and
then finds the campaign gone.

Campaign ids are never updated (no path in the app does; the foreign key's
NO ACTION on update is not reproduced).

The model keeps declaring the foreign key (the logical rule, and SQLite's
schema); on PostgreSQL this migration replaces it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 05:10:00

"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("contact_attempts", "answers")

CAMPAIGN_LOCK = 0x43414D50  # advisory lock class ("CAMP") of a campaign's events; objid = campaign id

CHECK = f"""CREATE OR REPLACE FUNCTION events_campaign_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_advisory_xact_lock_shared({CAMPAIGN_LOCK}, c) FROM (SELECT DISTINCT campaign_id AS c FROM new_rows) d;
  IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = n.campaign_id)) THEN
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "fk_%_campaign_id_campaigns"',
      TG_TABLE_NAME, TG_TABLE_NAME
      USING ERRCODE = 'foreign_key_violation',
            DETAIL = 'Key (campaign_id) is not present in table "campaigns".';
  END IF;
  RETURN NULL;
END
$fn$"""

CASCADE = f"""CREATE OR REPLACE FUNCTION campaigns_delete_events() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_advisory_xact_lock({CAMPAIGN_LOCK}, id) FROM old_rows;
  DELETE FROM contact_attempts WHERE campaign_id IN (SELECT id FROM old_rows);
  DELETE FROM answers WHERE campaign_id IN (SELECT id FROM old_rows);
  RETURN NULL;
END
$fn$"""


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(CHECK)
    op.execute(CASCADE)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT fk_{table}_campaign_id_campaigns")
        # transition tables allow one event per trigger: one for INSERT, one for UPDATE
        op.execute(f"CREATE TRIGGER trg_{table}_campaign_insert AFTER INSERT ON {table} "
                   "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION events_campaign_check()")
        op.execute(f"CREATE TRIGGER trg_{table}_campaign_update AFTER UPDATE ON {table} "
                   "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION events_campaign_check()")
    op.execute("CREATE TRIGGER trg_campaigns_delete_events AFTER DELETE ON campaigns "
               "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION campaigns_delete_events()")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS trg_campaigns_delete_events ON campaigns")
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_campaign_update ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_campaign_insert ON {table}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_campaign_id_campaigns FOREIGN KEY (campaign_id) "
                   "REFERENCES campaigns (id) ON DELETE CASCADE")
    op.execute("DROP FUNCTION IF EXISTS campaigns_delete_events()")
    op.execute("DROP FUNCTION IF EXISTS events_campaign_check()")

"""indexes the push path writes and no query reads

Why: every pushed contact attempt writes a row to ``change_feed`` and one to
``mutation_results``, and each row pays for every index of its table. Several
of those indexes answered no query:

* ``change_feed``: the pull reads ``campaign_id = ? AND txid >= ?`` ordered by
  ``(txid, id)`` (server/sync/feed.py). ``campaign_id`` alone, ``address_id`` and
  ``walk_list_id`` were never searched on, and ``(campaign_id, version)`` was
  never used (``version`` is 0 on PostgreSQL, equal to ``txid`` on SQLite). One
  index ``(campaign_id, txid, id)`` now serves the pull in its own order; ``txid``
  stays for the SQLite horizon (``max(txid)``).
* ``mutation_results``: read by device and seq (the primary key, for replays) and,
  by campaign, only for ``status = 'rejected'`` (conflict review, follow-ups): the
  campaign index is now partial, so applied results (nearly all) skip it.
* ``contact_attempts.campaign_id`` and ``answers.campaign_id`` (and
  ``answers (campaign_id, question_key)``): each is the leading part of another
  index of its table (``ix_contact_attempts_campaign_list``,
  ``ix_answers_respondent``), which serves the same searches.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 05:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REJECTED = sa.text("status = 'rejected'")


def upgrade() -> None:
    op.drop_index('ix_change_feed_campaign_id', table_name='change_feed')
    op.drop_index('ix_change_feed_address_id', table_name='change_feed')
    op.drop_index('ix_change_feed_walk_list_id', table_name='change_feed')
    op.drop_index('ix_change_feed_campaign_version', table_name='change_feed')
    op.create_index('ix_change_feed_campaign_txid', 'change_feed', ['campaign_id', 'txid', 'id'])
    op.drop_index('ix_mutation_results_campaign_id', table_name='mutation_results')
    op.create_index('ix_mutation_results_rejected', 'mutation_results', ['campaign_id'],
                    postgresql_where=REJECTED, sqlite_where=REJECTED)
    op.drop_index('ix_contact_attempts_campaign_id', table_name='contact_attempts')
    op.drop_index('ix_answers_campaign_id', table_name='answers')
    op.drop_index('ix_answers_campaign_question', table_name='answers')


def downgrade() -> None:
    op.create_index('ix_answers_campaign_question', 'answers', ['campaign_id', 'question_key'])
    op.create_index('ix_answers_campaign_id', 'answers', ['campaign_id'])
    op.create_index('ix_contact_attempts_campaign_id', 'contact_attempts', ['campaign_id'])
    op.drop_index('ix_mutation_results_rejected', table_name='mutation_results')
    op.create_index('ix_mutation_results_campaign_id', 'mutation_results', ['campaign_id'])
    op.drop_index('ix_change_feed_campaign_txid', table_name='change_feed')
    op.create_index('ix_change_feed_campaign_version', 'change_feed', ['campaign_id', 'version'])
    op.create_index('ix_change_feed_walk_list_id', 'change_feed', ['walk_list_id'])
    op.create_index('ix_change_feed_address_id', 'change_feed', ['address_id'])
    op.create_index('ix_change_feed_campaign_id', 'change_feed', ['campaign_id'])

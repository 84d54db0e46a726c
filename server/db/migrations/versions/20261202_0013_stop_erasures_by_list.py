"""find a walk list's erased stops: what a deleted or merged list brought to a phone

Why: a phone that held a list which was then deleted or merged into another must be told to
drop the list's addresses and electors (server/sync/pull.py ``_scope_removals``). The list's
stops are gone by then; their ``erase`` change rows now carry the stop's address
(server/walklists/services.py), and this partial index finds them by list. Pushes never write
stop erasures, so the push path pays nothing for it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 15:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STOP_ERASURES = sa.text("entity = 'stop' AND op = 'erase'")


def upgrade() -> None:
    """Index the stop erasures of the change feed by walk list."""
    op.create_index('ix_change_feed_stop_erasures', 'change_feed', ['walk_list_id'],
                    postgresql_where=STOP_ERASURES, sqlite_where=STOP_ERASURES)


def downgrade() -> None:
    """Drop the index."""
    op.drop_index('ix_change_feed_stop_erasures', table_name='change_feed')

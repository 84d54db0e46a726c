"""walk list routing: how each list was routed (street network or straight line)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 11:10:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add walk_lists.routing ("street_network" or "straight_line"; NULL for lists cut before this)."""
    with op.batch_alter_table('walk_lists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing', sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Drop walk_lists.routing."""
    with op.batch_alter_table('walk_lists', schema=None) as batch_op:
        batch_op.drop_column('routing')

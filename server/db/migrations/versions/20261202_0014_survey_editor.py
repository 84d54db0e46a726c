"""survey editor: drafts, publishing and archiving, a door script, outcome codes and translations per survey version

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 14:45:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0014'
down_revision: str | Sequence[str] | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Surveys made before the editor were published versions (the demo's): they keep that status."""
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False, server_default='published'))
        batch_op.add_column(sa.Column('script', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('outcomes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('translations', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the editor's columns (drafts become active-less rows of the old shape)."""
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.drop_column('published_at')
        batch_op.drop_column('translations')
        batch_op.drop_column('outcomes')
        batch_op.drop_column('script')
        batch_op.drop_column('status')

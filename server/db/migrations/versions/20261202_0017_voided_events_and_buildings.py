"""voided events (undo of a sent record) and building outlines (maps with no tile server)

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-02 15:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0017'
down_revision: str | Sequence[str] | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add voided_events and buildings."""
    op.create_table(
        'voided_events',
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('entity', sa.String(length=24), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('address_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=True),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('void_hlc', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('device_id', sa.Integer(), nullable=True),
        sa.Column('voided_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_voided_events_campaign_id_campaigns'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('event_id', name=op.f('pk_voided_events')),
    )
    op.create_index(op.f('ix_voided_events_campaign_id'), 'voided_events', ['campaign_id'])
    op.create_index(op.f('ix_voided_events_address_id'), 'voided_events', ['address_id'])
    op.create_index(op.f('ix_voided_events_person_id'), 'voided_events', ['person_id'])
    op.create_table(
        'buildings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('building', sa.String(length=32), nullable=False),
        sa.Column('geometry', sa.LargeBinary(), nullable=False),
        sa.Column('min_lon', sa.Float(), nullable=False),
        sa.Column('min_lat', sa.Float(), nullable=False),
        sa.Column('max_lon', sa.Float(), nullable=False),
        sa.Column('max_lat', sa.Float(), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_buildings_campaign_id_campaigns'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_buildings')),
    )
    op.create_index('ix_buildings_campaign_bbox', 'buildings', ['campaign_id', 'min_lon', 'max_lon', 'min_lat', 'max_lat'])
    op.create_index(op.f('ix_buildings_campaign_id'), 'buildings', ['campaign_id'])


def downgrade() -> None:
    """Drop buildings and voided_events."""
    op.drop_index(op.f('ix_buildings_campaign_id'), table_name='buildings')
    op.drop_index('ix_buildings_campaign_bbox', table_name='buildings')
    op.drop_table('buildings')
    op.drop_index(op.f('ix_voided_events_person_id'), table_name='voided_events')
    op.drop_index(op.f('ix_voided_events_address_id'), table_name='voided_events')
    op.drop_index(op.f('ix_voided_events_campaign_id'), table_name='voided_events')
    op.drop_table('voided_events')

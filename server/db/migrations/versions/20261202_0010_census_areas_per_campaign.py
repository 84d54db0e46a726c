"""Census areas belong to a campaign: unique per (campaign, code, vintage)

Why: areas were shared by every campaign and imports matched them by census
code alone, so an organiser of one campaign who imported census counts or
boundaries overwrote another campaign's areas (issue 14: a population went
from 302 to 100,000). Now each campaign holds its own copy.

Data: an area linked to one campaign becomes that campaign's; an area linked to
several is copied once per further campaign and those links are moved to the
copies; an area linked to none (unreachable: every read goes through a
campaign) is deleted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 11:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPIED = ("code", "name", "kind", "vintage", "geometry", "min_lon", "min_lat", "max_lon", "max_lat",
          "population", "census_table", "counts", "parent_code")


def _keep_links() -> list[dict[str, int]]:
    """SQLite rebuilds census_areas in batch mode, and dropping the old table cascades to campaign_areas: keep the links."""
    if op.get_bind().dialect.name != "sqlite":
        return []
    rows = op.get_bind().execute(sa.text("SELECT campaign_id, area_id FROM campaign_areas")).all()
    return [{"c": c, "a": a} for c, a in rows]


def _restore_links(links: list[dict[str, int]]) -> None:
    if links:
        op.get_bind().execute(sa.text("DELETE FROM campaign_areas"))
        op.get_bind().execute(sa.text("INSERT INTO campaign_areas (campaign_id, area_id) VALUES (:c, :a)"), links)


def upgrade() -> None:
    """Give every area its campaign, copying areas that several campaigns shared."""
    links = _keep_links()
    with op.batch_alter_table('census_areas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint('uq_census_areas_code', type_='unique')
    _restore_links(links)
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE census_areas SET campaign_id = (SELECT MIN(l.campaign_id) FROM campaign_areas l WHERE l.area_id = census_areas.id)"
    ))
    shared = bind.execute(sa.text(
        "SELECT l.campaign_id, l.area_id FROM campaign_areas l JOIN census_areas a ON a.id = l.area_id "
        "WHERE l.campaign_id <> a.campaign_id ORDER BY l.area_id, l.campaign_id"
    )).all()
    columns = ", ".join(COPIED)
    for campaign_id, area_id in shared:
        new_id = bind.execute(
            sa.text(f"INSERT INTO census_areas (campaign_id, {columns}) SELECT :c, {columns} FROM census_areas WHERE id = :a RETURNING id"),
            {"c": campaign_id, "a": area_id},
        ).scalar_one()
        bind.execute(sa.text("UPDATE campaign_areas SET area_id = :n WHERE campaign_id = :c AND area_id = :a"),
                     {"n": new_id, "c": campaign_id, "a": area_id})
    bind.execute(sa.text("DELETE FROM census_areas WHERE campaign_id IS NULL"))
    links = _keep_links()
    with op.batch_alter_table('census_areas', schema=None) as batch_op:
        batch_op.alter_column('campaign_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_census_areas_campaign_id_campaigns'), 'campaigns', ['campaign_id'], ['id'], ondelete='CASCADE'
        )
        batch_op.create_unique_constraint('uq_census_areas_campaign_code_vintage', ['campaign_id', 'code', 'vintage'])
        batch_op.create_index(batch_op.f('ix_census_areas_campaign_id'), ['campaign_id'], unique=False)
    _restore_links(links)


def downgrade() -> None:
    """Back to shared areas: keeps one copy per (code, vintage), relinking campaigns to it."""
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE campaign_areas SET area_id = (SELECT MIN(b.id) FROM census_areas a JOIN census_areas b "
        "ON b.code = a.code AND b.vintage = a.vintage WHERE a.id = campaign_areas.area_id)"
    ))
    bind.execute(sa.text(
        "DELETE FROM census_areas WHERE id NOT IN (SELECT MIN(id) FROM census_areas GROUP BY code, vintage)"
    ))
    links = _keep_links()
    with op.batch_alter_table('census_areas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_census_areas_campaign_id'))
        batch_op.drop_constraint('uq_census_areas_campaign_code_vintage', type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_census_areas_campaign_id_campaigns'), type_='foreignkey')
        batch_op.drop_column('campaign_id')
        batch_op.create_unique_constraint('uq_census_areas_code', ['code', 'vintage'])
    _restore_links(links)

"""tracked links: click counting without people

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tracked_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailing_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('item', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('area', sa.String(length=40), nullable=True),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('unique_clicks', sa.Integer(), nullable=False),
    sa.Column('readers', sa.Integer(), nullable=False),
    sa.Column('area_readers', sa.Integer(), nullable=False),
    sa.Column('scanner_hits', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['mailing_id'], ['mailings.id'], name=op.f('fk_tracked_links_mailing_id_mailings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracked_links')),
    sa.UniqueConstraint('mailing_id', 'number', name=op.f('uq_tracked_links_mailing_id_number'))
    )


def downgrade() -> None:
    op.drop_table('tracked_links')

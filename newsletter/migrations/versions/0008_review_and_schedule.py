"""review and approval, scheduled mailings, withdrawal from the archive

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('segment', sa.Text(), nullable=False),
    sa.Column('segment_expr', sa.Text(), nullable=False),
    sa.Column('source_data', sa.JSON(), nullable=False),
    sa.Column('submitted_by', sa.String(length=320), nullable=True),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('submitted_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('approved_by', sa.String(length=320), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('approved_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('approved_text', sa.Text(), nullable=True),
    sa.Column('returned_by', sa.String(length=320), nullable=True),
    sa.Column('returned_at', sa.DateTime(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews')),
    sa.UniqueConstraint('kind', 'key', name=op.f('uq_reviews_kind_key'))
    )
    with op.batch_alter_table('mailings') as batch:
        batch.add_column(sa.Column('scheduled_at', sa.DateTime(), nullable=True))
        batch.create_index(batch.f('ix_mailings_scheduled_at'), ['scheduled_at'], unique=False)
    with op.batch_alter_table('archived_issues') as batch:
        batch.add_column(sa.Column('withdrawn_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('archived_issues') as batch:
        batch.drop_column('withdrawn_at')
    with op.batch_alter_table('mailings') as batch:
        batch.drop_index(batch.f('ix_mailings_scheduled_at'))
        batch.drop_column('scheduled_at')
    op.drop_table('reviews')

"""one mailing concept: a frozen variant keeps its preheader; the unused encoded column goes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite cannot drop a column in place (Alembic copies the table).
    with op.batch_alter_table('mailing_variants') as batch_op:
        batch_op.add_column(sa.Column('preheader', sa.Text(), server_default='', nullable=False))
        batch_op.drop_column('encoded')


def downgrade() -> None:
    with op.batch_alter_table('mailing_variants') as batch_op:
        batch_op.add_column(sa.Column('encoded', sa.LargeBinary(), nullable=True))
        batch_op.drop_column('preheader')

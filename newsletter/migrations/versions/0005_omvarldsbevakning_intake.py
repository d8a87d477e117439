"""omvärldsbevakning: intake feeds, entries, remisser and their reminders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('intake_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('guid_key', sa.String(length=64), nullable=True),
    sa.Column('url_key', sa.String(length=64), nullable=True),
    sa.Column('guid', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('fetched_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('suggested_area', sa.String(length=40), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('reason', sa.JSON(), nullable=False),
    sa.Column('area', sa.String(length=40), nullable=True),
    sa.Column('issue', sa.String(length=7), nullable=True),
    sa.Column('item_path', sa.Text(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_entries')),
    sa.UniqueConstraint('guid_key', name=op.f('uq_intake_entries_guid_key')),
    sa.UniqueConstraint('url_key', name=op.f('uq_intake_entries_url_key'))
    )
    with op.batch_alter_table('intake_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intake_entries_feed'), ['feed'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_entries_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_entries_suggested_area'), ['suggested_area'], unique=False)

    op.create_table('intake_feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('etag', sa.Text(), nullable=True),
    sa.Column('last_modified', sa.Text(), nullable=True),
    sa.Column('checked_at', sa.DateTime(), nullable=True),
    sa.Column('ok_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_feeds')),
    sa.UniqueConstraint('name', name=op.f('uq_intake_feeds_name'))
    )
    op.create_table('remisser',
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('answer_by', sa.Date(), nullable=True),
    sa.Column('answer_by_source', sa.String(length=10), nullable=True),
    sa.Column('page_attempts', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('answer_url', sa.Text(), nullable=True),
    sa.Column('answer_item', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['entry_id'], ['intake_entries.id'], name=op.f('fk_remisser_entry_id_intake_entries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_remisser'))
    )
    with op.batch_alter_table('remisser', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_remisser_answer_by'), ['answer_by'], unique=False)
        batch_op.create_index(batch_op.f('ix_remisser_state'), ['state'], unique=False)

    op.create_table('remiss_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('answer_by', sa.Date(), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['remisser.entry_id'], name=op.f('fk_remiss_reminders_entry_id_remisser'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_remiss_reminders')),
    sa.UniqueConstraint('entry_id', 'answer_by', 'recipient', name=op.f('uq_remiss_reminders_entry_id_answer_by_recipient'))
    )
    with op.batch_alter_table('remiss_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_remiss_reminders_entry_id'), ['entry_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('remiss_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_remiss_reminders_entry_id'))

    op.drop_table('remiss_reminders')
    with op.batch_alter_table('remisser', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_remisser_state'))
        batch_op.drop_index(batch_op.f('ix_remisser_answer_by'))

    op.drop_table('remisser')
    op.drop_table('intake_feeds')
    with op.batch_alter_table('intake_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_entries_suggested_area'))
        batch_op.drop_index(batch_op.f('ix_intake_entries_status'))
        batch_op.drop_index(batch_op.f('ix_intake_entries_feed'))

    op.drop_table('intake_entries')

"""staff console: staff, sign-in tokens (hashes), console sessions, OIDC flows, rate counters

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_oidc_flows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=100), nullable=False),
    sa.Column('code_verifier', sa.String(length=200), nullable=False),
    sa.Column('next_path', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_oidc_flows')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_console_oidc_flows_state_hash'))
    )
    with op.batch_alter_table('console_oidc_flows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_oidc_flows_created_at'), ['created_at'], unique=False)

    op.create_table('console_rate_counters',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_console_rate_counters'))
    )
    op.create_table('staff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_email'))
    )
    op.create_table('console_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_console_sessions_staff_id_staff'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    sa.UniqueConstraint('session_hash', name=op.f('uq_console_sessions_session_hash'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_last_seen_at'), ['last_seen_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_sessions_staff_id'), ['staff_id'], unique=False)

    op.create_table('console_sign_in_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_console_sign_in_tokens_staff_id_staff'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sign_in_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_sign_in_tokens_token_hash'))
    )
    with op.batch_alter_table('console_sign_in_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sign_in_tokens_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_sign_in_tokens_staff_id'), ['staff_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('console_sign_in_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sign_in_tokens_staff_id'))
        batch_op.drop_index(batch_op.f('ix_console_sign_in_tokens_expires_at'))

    op.drop_table('console_sign_in_tokens')
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_staff_id'))
        batch_op.drop_index(batch_op.f('ix_console_sessions_last_seen_at'))

    op.drop_table('console_sessions')
    op.drop_table('staff')
    op.drop_table('console_rate_counters')
    with op.batch_alter_table('console_oidc_flows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_oidc_flows_created_at'))

    op.drop_table('console_oidc_flows')

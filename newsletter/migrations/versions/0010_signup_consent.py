"""sign-up with double opt-in: consent records, role claims, webinar-only contacts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_texts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=80), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_texts')),
    sa.UniqueConstraint('version', name=op.f('uq_consent_texts_version'))
    )
    op.create_table('consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('page', sa.String(length=200), nullable=False),
    sa.Column('webinar_id', sa.Integer(), nullable=True),
    sa.Column('given_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_consents_person_id_persons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['consent_texts.id'], name=op.f('fk_consents_text_id_consent_texts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['webinar_id'], ['webinars.id'], name=op.f('fk_consents_webinar_id_webinars'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    op.create_index(op.f('ix_consents_person_id'), 'consents', ['person_id'], unique=False)
    op.create_table('role_claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('municipality_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('page', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decided_by', sa.String(length=320), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipalities.id'], name=op.f('fk_role_claims_municipality_id_municipalities'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_role_claims_person_id_persons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_claims'))
    )
    op.create_index(op.f('ix_role_claims_decided_at'), 'role_claims', ['decided_at'], unique=False)
    op.create_index(op.f('ix_role_claims_person_id'), 'role_claims', ['person_id'], unique=False)
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subscribed', sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table('signups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('public_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('mailed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('name', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('municipality_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('role', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('areas', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('subscribe', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('page', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('consent_text_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('newsletter_text_id', sa.Integer(), nullable=True))
        batch_op.alter_column('webinar_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_signups_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_signups_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_signups_person_id'), ['person_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_signups_public_id'), ['public_id'])
        batch_op.create_foreign_key(batch_op.f('fk_signups_municipality_id_municipalities'), 'municipalities', ['municipality_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_signups_consent_text_id_consent_texts'), 'consent_texts', ['consent_text_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_foreign_key(batch_op.f('fk_signups_newsletter_text_id_consent_texts'), 'consent_texts', ['newsletter_text_id'], ['id'], ondelete='RESTRICT')


def downgrade() -> None:
    with op.batch_alter_table('signups', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_signups_newsletter_text_id_consent_texts'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_signups_consent_text_id_consent_texts'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_signups_municipality_id_municipalities'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_signups_public_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_signups_person_id'))
        batch_op.drop_index(batch_op.f('ix_signups_email'))
        batch_op.drop_index(batch_op.f('ix_signups_created_at'))
        batch_op.alter_column('webinar_id', existing_type=sa.Integer(), nullable=False)
        for column in ('newsletter_text_id', 'consent_text_id', 'page', 'subscribe', 'areas',
                       'role', 'municipality_id', 'name', 'mailed_at', 'public_id', 'email'):
            batch_op.drop_column(column)
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_column('subscribed')
    op.drop_index(op.f('ix_role_claims_person_id'), table_name='role_claims')
    op.drop_index(op.f('ix_role_claims_decided_at'), table_name='role_claims')
    op.drop_table('role_claims')
    op.drop_index(op.f('ix_consents_person_id'), table_name='consents')
    op.drop_table('consents')
    op.drop_table('consent_texts')

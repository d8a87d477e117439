"""positions over time; soft-bounce reset

Positions get a start and an optional end date (existing ones start on the day their person
was added, the best date there is), and the unique (person, municipality, role) constraint
becomes a unique index over the open positions only, so that a person may hold the same role
again after it ended. Persons get soft_bounced_at (see bounces.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('ended_on', sa.Date(), nullable=True))
    created = sa.select(sa.text('created_at')).select_from(sa.table('persons')).where(
        sa.text('persons.id = positions.person_id')).scalar_subquery()
    day = (sa.func.date(created) if op.get_bind().dialect.name == 'sqlite'
           else sa.cast(created, sa.Date))
    op.execute(sa.table('positions', sa.column('started_on')).update().values(started_on=day))
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.alter_column('started_on', existing_type=sa.Date(), nullable=False)
        batch_op.drop_constraint('uq_positions_person_id_municipality_id_role', type_='unique')
    op.create_index('uq_positions_open', 'positions',
                    ['person_id', sa.text('coalesce(municipality_id, 0)'), 'role'], unique=True,
                    sqlite_where=sa.text('ended_on IS NULL'),
                    postgresql_where=sa.text('ended_on IS NULL'))
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('soft_bounced_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_column('soft_bounced_at')
    op.drop_index('uq_positions_open', table_name='positions')
    # The history goes: only the open positions fit the old constraint.
    op.execute(sa.text('DELETE FROM positions WHERE ended_on IS NOT NULL'))
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_positions_person_id_municipality_id_role',
                                          ['person_id', 'municipality_id', 'role'])
        batch_op.drop_column('ended_on')
        batch_op.drop_column('started_on')

"""Alembic environment: runs against the engine that newsletter.db.migrate passes in.

On SQLite a batch migration rebuilds a table (copy, DROP, rename). With foreign keys on, the DROP
of `persons` would cascade to every row that references a person (positions, areas,
registrations, consents): a migration must never delete data, so SQLite's foreign keys are off
while migrations run (as Alembic's batch documentation advises), checked with
`PRAGMA foreign_key_check` before the commit, and on again afterwards.
"""

from alembic import context

from newsletter.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # on the driver's connection, before SQLAlchemy begins: SQLite ignores it within
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows without their parent: {broken}")
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")

"""Alembic environment of medmij-dvza: run by :mod:`dvza.migrate` (``dvza db upgrade``), which hands it a
connection that already holds the migration lock, inside one transaction (Alembic "Sharing a Connection
across one or more programmatic migration commands"). There is no ``alembic.ini``: the script location and
the connection come from :func:`dvza.migrate.alembic_config`.
"""

from __future__ import annotations

from alembic import context

from dvza import schema

config = context.config
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    target_metadata=schema.metadatas(),
    # SQLite and PostgreSQL both have transactional DDL: a migration that fails leaves nothing half done
    transactional_ddl=True,
    # SQLite cannot ALTER most things in place: Alembic's "batch" mode copies the table instead
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)

with context.begin_transaction():
    context.run_migrations()

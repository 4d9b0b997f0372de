"""Alembic environment: always run programmatically with a connection from the store."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from web.store.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("migrations run through web.store.migrate.upgrade(), given a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place: later migrations rebuild tables in batches
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

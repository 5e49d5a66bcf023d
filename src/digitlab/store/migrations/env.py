"""Alembic environment: always run with a connection handed over by `digitlab.store.migrate`.

digitlab db upgrade     # never `alembic upgrade` directly: there is no alembic.ini
"""

from __future__ import annotations

from alembic import context

from digitlab.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `digitlab db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()

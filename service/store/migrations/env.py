"""Alembic's environment for the store: migrations run on the connection the caller hands over.

``service.store.migrate`` opens the connection (taking the lock that keeps processes starting
together from migrating twice) and passes it in ``config.attributes["connection"]``; the
``alembic`` command line is not needed, so there is no URL here.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.store import tables  # noqa: F401  (registers every table on Base.metadata)
from service.store.db import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot alter most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "the store's migrations run through service.store.migrate, with a connection"
    )
_run(connection)

"""Alembic's environment: the connection comes from ``orchestrator.store.migrations`` (never a URL
in a config file); SQLite gets batch mode so a later column change can rebuild a table."""

from __future__ import annotations

from alembic import context

from orchestrator.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

"""Additive schema upgrades for databases created by an earlier benchfarm.

``create_all`` creates missing tables but never alters existing ones, so a column added to
a model after a farm's database was created would break every query on it. The only
changes benchfarm makes to its schema are *added, defaulted columns*; this adds any that
are missing, with the model's default, in one transaction. Anything else (a renamed or
retyped column) would need a real migration and is refused loudly rather than guessed.
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.schema import Column

from orchestrator.store.models import Base

log = logging.getLogger("benchfarm.store")


def _default_sql(col: Column) -> str:
    default = col.default.arg if col.default is not None and not callable(col.default.arg) else None
    if default is None:
        return ""
    if isinstance(default, bool):
        return f" DEFAULT {'TRUE' if default else 'FALSE'}"
    if isinstance(default, int | float):
        return f" DEFAULT {default}"
    return " DEFAULT '" + str(default).replace("'", "''") + "'"


def add_missing_columns(engine: Engine) -> list[str]:
    """Add every model column an existing table lacks; returns ``table.column`` names added."""
    insp = inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if not insp.has_table(table.name):
                continue
            present = {c["name"] for c in insp.get_columns(table.name)}
            for col in table.columns:
                if col.name in present:
                    continue
                if not col.nullable and _default_sql(col) == "":
                    raise RuntimeError(f"cannot add {table.name}.{col.name}: NOT NULL without a default "
                                       "(needs a real migration)")
                ddl = col.type.compile(dialect=engine.dialect)
                null = "" if col.nullable else " NOT NULL"
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN {col.name} {ddl}{_default_sql(col)}{null}'))
                added.append(f"{table.name}.{col.name}")
    if added:
        log.warning("database upgraded: added columns %s", ", ".join(added))
    return added

"""Baseline: the schema benchfarm created before migrations.

A fresh database gets every table; a database made by an earlier benchfarm (create_all plus
the additive per-process upgrade, no ``alembic_version``) keeps its rows and gains whatever
baseline columns it lacks, each with its default — the old upgrade's rule, run once, here.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchestrator.store.migrations.baseline import METADATA

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _default_sql(col: sa.Column) -> str:
    arg = getattr(col.default, "arg", None)  # a ScalarElementColumnDefault's value
    default = arg if not callable(arg) else None
    if default is None:
        return ""
    if isinstance(default, bool):
        return f" DEFAULT {'TRUE' if default else 'FALSE'}"
    if isinstance(default, int | float):
        return f" DEFAULT {default}"
    return " DEFAULT '" + str(default).replace("'", "''") + "'"


def upgrade() -> None:
    bind = op.get_bind()
    METADATA.create_all(bind)  # checkfirst: only the tables an older database lacks
    insp = sa.inspect(bind)
    for table in METADATA.sorted_tables:
        present = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name in present:
                continue
            if not col.nullable and _default_sql(col) == "":
                raise RuntimeError(f"cannot add {table.name}.{col.name}: NOT NULL without a default")
            null = "" if col.nullable else " NOT NULL"
            op.execute(f"ALTER TABLE {table.name} ADD COLUMN {col.name} "
                       f"{col.type.compile(dialect=bind.dialect)}{_default_sql(col)}{null}")


def downgrade() -> None:
    METADATA.drop_all(op.get_bind())

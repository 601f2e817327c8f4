"""Schema migrations (Alembic): a database made by the benchfarm before migrations upgrades
cleanly with `benchfarm db upgrade`, keeping its rows; a process refuses an old schema instead
of altering it; a fresh database built from the models equals one built by the migrations."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from orchestrator.store import migrations
from orchestrator.store.models import Base

# made by main's code at abb1b3e (create_all plus the additive per-process upgrade): one run, job,
# attempt, result, artifact and device event
PRE_MIGRATIONS = Path(__file__).parent / "data" / "pre_migrations.db"


def _cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "db", *args, "--url", f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=120)


def test_a_database_from_before_migrations_upgrades_with_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "farm.db"
    shutil.copy(PRE_MIGRATIONS, db)
    eng = create_engine(f"sqlite:///{db}")
    with pytest.raises(migrations.SchemaOutdated, match="made before schema migrations.*benchfarm db upgrade"):
        migrations.check(eng)
    out = _cli("upgrade", db=db)
    assert out.returncode == 0, out.stderr
    assert f"none -> {migrations.head()}" in out.stdout
    migrations.check(eng)  # at head now: accepted
    with eng.connect() as conn:
        job = conn.execute(text("SELECT model, state, artifact_key, request_key FROM jobs")).one()
        result = conn.execute(text("SELECT median_ms, document FROM results")).one()
        assert tuple(job) == ("tiny", "succeeded", "a" * 64, "")
        assert result.median_ms == 11.0 and "latencies_ms" in result.document
    assert _cli("upgrade", db=db).stdout.strip().endswith(f"{migrations.head()} -> {migrations.head()}")


def test_an_older_database_gains_the_baseline_columns_with_defaults(tmp_path: Path) -> None:
    db = tmp_path / "older.db"
    shutil.copy(PRE_MIGRATIONS, db)
    eng = create_engine(f"sqlite:///{db}")
    with eng.begin() as conn:  # an earlier benchfarm still: before A/B, verify jobs and operator profiles
        for table, col in (("jobs", "purpose"), ("jobs", "ab_rounds"), ("results", "ab")):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {col}"))
        conn.execute(text("DROP TABLE profile_operators"))
        conn.execute(text("DROP TABLE profiles"))
    assert migrations.upgrade(eng) == (None, migrations.head())
    with eng.connect() as conn:
        assert tuple(conn.execute(text("SELECT model, purpose, ab_rounds FROM jobs")).one()) == ("tiny", "measure", 0)
    assert {"profiles", "profile_operators"} <= set(inspect(eng).get_table_names())


def test_the_migrations_build_exactly_the_models_schema(tmp_path: Path) -> None:
    by_migrations = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    migrations.upgrade(by_migrations)
    with by_migrations.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    fresh = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrations.check(fresh)  # a fresh database is created at head
    with fresh.connect() as conn:
        assert migrations.current(conn) == migrations.head()
    assert set(inspect(fresh).get_table_names()) == set(inspect(by_migrations).get_table_names())

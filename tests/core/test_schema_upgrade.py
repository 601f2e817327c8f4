"""A database made by an earlier benchfarm (without the newest columns) is upgraded in place:
the columns appear with their defaults and the old rows keep their data."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from orchestrator.store.models import Base
from orchestrator.store.upgrade import add_missing_columns


def test_missing_columns_are_added_with_defaults(tmp_path: Path) -> None:
    eng = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    Base.metadata.create_all(eng)
    with eng.begin() as conn:
        for table, col in (("jobs", "purpose"), ("jobs", "ab_rounds"), ("jobs", "baseline_artifact_key"),
                           ("results", "ab")):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {col}"))
        conn.execute(text("INSERT INTO runs (id, name, trigger, requested_by, priority, status, spec_yaml, "
                          "spec_source, created_at, finalized, summary, meta) VALUES ('r1', 'old', 'manual', '', "
                          "3, 'running', '{}', '', '2026-01-01 00:00:00', 0, '{}', '{}')"))
        conn.execute(text("INSERT INTO jobs (id, run_id, model, backend, device_class, device_selector, "
                          "input_resolution, batch_size, iterations, warmup, repeat_index, compute_units, "
                          "timeout_s, artifact_key, state, reason, priority, attempt_count, created_at) VALUES "
                          "('j1', 'r1', 'tiny_cnn', 'xnnpack', 'host-cpu', '', 64, 1, 10, 1, 0, 'all', 60, 'k', "
                          "'queued', '', 3, 0, '2026-01-01 00:00:00')"))
    assert "purpose" not in {c["name"] for c in inspect(eng).get_columns("jobs")}
    added = add_missing_columns(eng)
    assert sorted(added) == ["jobs.ab_rounds", "jobs.baseline_artifact_key", "jobs.purpose", "results.ab"]
    with eng.connect() as conn:
        row = conn.execute(text("SELECT model, purpose, ab_rounds, baseline_artifact_key FROM jobs")).one()
    assert tuple(row) == ("tiny_cnn", "measure", 0, "")
    assert add_missing_columns(eng) == []  # idempotent

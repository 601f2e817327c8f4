"""Stability figures: per cell (CV, p99/p50, max/min, noisy, repeats disagree) in the tables and the
matrix view, and per device (recent vs earlier CV) as pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session

from orchestrator.analysis.stability import device_stability, flags, of_samples, replication_spread
from orchestrator.reports.build import analyse_run
from orchestrator.reports.data import load_run
from orchestrator.reports.tables import device_tables

from .factory import add_cell, add_run


def test_figures_of_a_known_sample():
    s = of_samples([10.0] * 98 + [20.0, 40.0])
    assert s is not None and s.max_min == 4.0 and s.n == 100
    assert s.p99_p50 == pytest.approx(np.percentile([10.0] * 98 + [20.0, 40.0], 99) / 10.0)
    assert of_samples([]) is None


def test_replication_spread_and_flags():
    assert replication_spread([10.0]) is None  # one repeat: nothing to check
    assert replication_spread([10.0, 10.4, 10.8]) == pytest.approx(0.08 / 1.04, rel=1e-6)
    noisy = of_samples(list(np.random.default_rng(1).normal(10, 3, 500).clip(1)))
    quiet = of_samples(list(np.random.default_rng(1).normal(10, 0.1, 500)))
    assert flags(quiet, 0.01, noisy_cv=0.10, tolerance=0.05) == []
    [n, r] = flags(noisy, 0.08, noisy_cv=0.10, tolerance=0.05)
    assert n.startswith("noisy (CV ") and n.endswith("> 10 %)") and r == "repeats disagree (8 % > 5 %)"


def test_a_device_is_degrading_when_its_recent_cv_grew_well_past_its_history():
    steady = [0.02] * 25
    assert not device_stability(steady).degrading
    worse = [0.09] * 5 + [0.02] * 20
    d = device_stability(worse)
    assert d is not None and d.degrading and not d.noisy and d.label() == "degrading: CV 2.0→9.0%"
    # growth below the floor is not news; too little history cannot degrade
    assert not device_stability([0.03] * 5 + [0.01] * 20).degrading
    assert not device_stability([0.09] * 5 + [0.02] * 2).degrading
    assert device_stability([0.2] * 3).label() == "noisy: CV 20.0%"
    assert device_stability([0.02] * 3).label() == "CV 2.0%"
    assert device_stability([]) is None


def test_tables_flag_noisy_cells_and_repeats_that_disagree(session: Session) -> None:
    run = add_run(session)
    add_cell(session, run, "m", "xnnpack", "A15", cv=0.02, seed=1)
    add_cell(session, run, "m", "coreml", "A15", cv=0.30, seed=2)
    add_cell(session, run, "m", "mps", "A15", repeats=2, latencies=[[10.0, 10.1, 9.9] * 10, [11.0, 11.1, 10.9] * 10])
    session.commit()
    data = load_run(session, run.id)
    [table] = device_tables(analyse_run(data))
    rows = {r.key.backend: dict(zip(table.columns, r.values, strict=True)) for r in table.rows if r.key}
    assert "noisy" not in rows["xnnpack"]["CV"] and rows["xnnpack"]["Notes"].count("noisy") == 0
    assert rows["coreml"]["CV"].endswith("% noisy") and "noisy (CV" in rows["coreml"]["Notes"]
    assert "repeats disagree (10 % > 5 %)" in rows["mps"]["Notes"]
    assert float(rows["xnnpack"]["p99/p50"]) > 1.0 and float(rows["mps"]["Max/min"]) > 1.0


def test_the_run_rule_sets_the_thresholds(session: Session) -> None:
    run = add_run(session)
    run.run_rules = {"noisy_cv": 0.5, "replication_tolerance": 0.2, "trigger": "nightly", "source": "spec"}
    add_cell(session, run, "m", "coreml", "A15", cv=0.30, seed=2)
    session.commit()
    [table] = device_tables(analyse_run(load_run(session, run.id)))
    assert not table.rows[0].flags

"""Nightly trends from DB rows: change points and silent cells, in the report formats."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from orchestrator.analysis.trends import cell_history, silent_cells
from orchestrator.reports.build import build_report
from orchestrator.reports.data import load_nightly_history
from orchestrator.reports.html import report_html
from orchestrator.reports.markdown import report_markdown

from .factory import add_cell, add_run

START = datetime(2026, 11, 1, 2, 0)


def _nightlies(session: Session) -> list[str]:
    ids = []
    for night in range(6):
        run = add_run(session, f"nightly {night}", "nightly", START + timedelta(days=night))
        ids.append(run.id)
        # steady cell: 10 ms, then a persistent step to 12 ms from night 3
        add_cell(session, run, "m", "xnnpack", "host-cpu", median=12.0 if night >= 3 else 10.0, cv=0.03,
                 seed=night)
        # a one-night blip on night 2 must not be a change point
        add_cell(session, run, "m", "xnnpack-int8", "host-cpu", median=14.0 if night == 2 else 7.0, cv=0.03,
                 seed=100 + night)
        if night < 2:
            add_cell(session, run, "m", "coreml", "A17-Pro", median=8, simulated=True, seed=200 + night)
        else:  # fails every night since: silent
            add_cell(session, run, "m", "coreml", "A17-Pro", state="failed", reason="device offline")
        if night < 3:  # disappears from the matrix entirely: silent too
            add_cell(session, run, "m", "xnnpack", "A15", median=30, simulated=True, seed=300 + night)
    add_run(session, "a PR run", "pr", START + timedelta(days=7))  # not part of the nightly history
    return ids


def test_change_points_and_silent_cells(session: Session) -> None:
    ids = _nightlies(session)
    runs = load_nightly_history(session, limit=30)
    assert [r.run.id for r in runs] == ids
    history = cell_history(runs)
    step = {k.backend + "/" + k.device_class: [p.change for p in v] for k, v in history.items()}
    assert step["xnnpack/host-cpu"] == ["", "", "", "slower", "", ""]
    assert step["xnnpack-int8/host-cpu"] == [""] * 6
    silent = {s.key.backend + "/" + s.key.device_class: s for s in silent_cells(runs, n=3)}
    assert set(silent) == {"coreml/A17-Pro", "xnnpack/A15"}
    assert silent["coreml/A17-Pro"].silent_runs == 4 and silent["coreml/A17-Pro"].last_state == "failed"
    assert silent["coreml/A17-Pro"].last_result_run == ids[1]
    assert silent["xnnpack/A15"].last_state == "absent" and silent["xnnpack/A15"].silent_runs == 3
    assert silent_cells(runs, n=5) == []  # coreml was silent for 4 runs only
    assert silent_cells(runs[:3], n=3) == []  # not enough history to judge


def test_report_shows_trends_and_silent_cells_loudly(session: Session) -> None:
    ids = _nightlies(session)
    report = build_report(session, ids[-1])
    md = report_markdown(report)
    assert "## ⚠️ Silent cells" in md and "no results for 4 nightly runs" in md
    assert "## Change points (nightly)" in md and f"slower from run `{ids[3]}`" in md
    html = report_html(report)
    assert '<div class="alert"><h2>Silent cells</h2>' in html
    assert html.count('class="plot trend"') >= 3
    # history stops at the report's run: an older run's report does not see the future step,
    # and its last night (the blip) can only be flagged tentatively: no next night confirms it yet
    old = {k.backend: [p.change for p in v] for k, v in build_report(session, ids[2]).history.items()
           if k.device_class == "host-cpu"}
    assert old == {"xnnpack": ["", "", ""], "xnnpack-int8": ["", "", "slower"]}

"""Run discovery: `benchfarm runs`, `latest`, `latest:NAME` and unique id prefixes, and the
status view at fixed widths (80 and 120 columns), against a real SQLite results store."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cli.runref import RefError, resolve_run, shortest_unique

from .rows import LONG_REASON, SEED_JOBS, add_run

runner = CliRunner()


def bf(*args: str, width: int = 80) -> tuple[int, str]:
    out = runner.invoke(app, list(args), env={"COLUMNS": str(width)})
    return out.exit_code, out.output


def test_latest_names_and_prefixes(store: Session) -> None:
    old = add_run(store, "seed-matrix", age=timedelta(days=2), run_id="abcd000000000001")
    twin = add_run(store, "host-quick", age=timedelta(days=1), run_id="abcd000000000002")
    new = add_run(store, "host-quick", age=timedelta(minutes=1), run_id="ef01000000000003")
    assert resolve_run(store, "latest") == new.id
    assert resolve_run(store, "latest:seed-matrix") == old.id
    assert resolve_run(store, "latest:host-quick") == new.id
    assert resolve_run(store, "ef01") == new.id and resolve_run(store, "abcd000000000002") == twin.id
    with pytest.raises(RefError, match="ambiguous") as exc:
        resolve_run(store, "abcd")
    assert old.id in str(exc.value) and twin.id in str(exc.value)  # the candidates are listed
    for bad in ("latest:nope", "abc", "ab%d", "9999"):
        with pytest.raises(RefError):
            resolve_run(store, bad)
    code, out = bf("status", "abcd")
    assert code == 1 and "ambiguous" in out and old.id in out


def test_shortest_unique_prefixes_like_git() -> None:
    short = shortest_unique(["abcdef0123", "abcdef9999", "0123456789"])
    assert short == {"abcdef0123": "abcdef0", "abcdef9999": "abcdef9", "0123456789": "0123456"}
    assert shortest_unique(["aaaaaaaaa1", "aaaaaaaaa2"])["aaaaaaaaa1"] == "aaaaaaaaa1"


def test_runs_lists_newest_first_with_filters(store: Session) -> None:
    seed = add_run(store, "seed-matrix", status="partial", age=timedelta(hours=3), jobs=SEED_JOBS)
    nightly = add_run(store, "seed-matrix", "nightly", age=timedelta(days=3))
    pr = add_run(store, "pr-check", "pr", status="running", age=timedelta(seconds=30))
    code, out = bf("runs", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [pr.id, seed.id, nightly.id]
    assert rows[1]["cells"] == {"ok": 1, "failed": 1, "blocked": 2, "pending": 2} and rows[1]["data"] == "none"
    assert set(rows[0]) >= {"id", "short_id", "name", "trigger", "status", "created_at", "age_s", "cells", "data"}
    assert [r["id"] for r in json.loads(bf("runs", "--json", "--trigger", "nightly")[1])] == [nightly.id]
    assert [r["id"] for r in json.loads(bf("runs", "--json", "--name", "seed-matrix", "--since", "1d")[1])] == [seed.id]
    assert [r["id"] for r in json.loads(bf("runs", "--json", "--status", "running")[1])] == [pr.id]
    assert bf("runs", "--status", "bogus")[0] == 2 and bf("runs", "--since", "yesterday")[0] == 2
    for width in (80, 120):
        code, out = bf("runs", width=width)
        assert code == 0 and all(len(line) <= width for line in out.splitlines())
        for r in rows:
            line = next(ln for ln in out.splitlines() if ln.startswith(r["short_id"] + " "))
            assert f" {r['status']} " in line and f" {r['trigger']} " in line and r["name"] in line
        assert "…" not in out


@pytest.mark.parametrize("width", [80, 120])
def test_status_fits_without_cutting_ids_or_states(store: Session, width: int) -> None:
    run = add_run(store, status="running", jobs=SEED_JOBS)
    code, out = bf("status", run.id[:6], width=width)
    assert code == 0, out
    lines = out.splitlines()
    assert all(len(line) <= width for line in lines) and "…" not in out
    assert run.id in lines[0] and "model mobilenet_v3_small" in out  # one model: said once, not per row
    state = json.loads(bf("status", "latest", "--json")[1])
    for job in state["jobs"]:
        row = [ln for ln in lines if re.match(job["id"][:7], ln)]
        assert len(row) == 1 and re.search(rf"\s{re.escape(job['state'])}(\s|$)", row[0]), (job, out)
    # reasons are footnotes: the long one in full, the repeated one once
    assert LONG_REASON.replace(" ", "") in out.replace("\n", "").replace(" ", "")
    assert out.count("needs a macOS exporter") == 1
    wide = bf("status", "latest", "--wide", width=width)[1]
    assert all(j["id"] in wide for j in state["jobs"]) and LONG_REASON in wide

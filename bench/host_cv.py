"""The demo's host cells (examples/host-quick.yaml) end to end, and how noisy they are.

Runs ``benchfarm demo --spec examples/host-quick.yaml`` (private results store, the Redis at
REDIS_URL, a coordinator worker, a Linux exporter and an agent with the host driver, as the
demo starts them) once per round for each *arm* — a checkout of benchfarm given by its path,
e.g. ``--arm before=/work/main --arm after=.`` — alternating the arms round by round so both
share the machine's load. For each run it reads the results store and records, per cell,
the matrix's CV (stdev/mean of the inference samples, far-out outliers excluded; what the
demo prints) with the raw CV, median and p10/p90, plus what the machine was doing meanwhile
(load average sampled every second, CPU busy share from /proc/stat) and, where the harness
reported one, its ``host_environment`` block. Writes bench/results/host_cv.json.

    python bench/host_cv.py --arm before=/work/main --arm after=. --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = "examples/host-quick.yaml"


def _cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class LoadSampler(threading.Thread):
    """The 1-minute load average and the runnable-task count, once a second."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.load: list[float] = []
        self.runnable: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            parts = Path("/proc/loadavg").read_text().split()
            self.load.append(float(parts[0]))
            self.runnable.append(int(parts[3].split("/")[0]))


def _cv(xs: list[float]) -> float:
    return statistics.stdev(xs) / statistics.fmean(xs) if len(xs) > 1 else 0.0


def _cells(db: Path) -> list[dict[str, Any]]:
    """Per cell of the newest run in ``db``: the figures the demo's matrix shows."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from orchestrator.analysis.cells import analyze
    from orchestrator.reports.data import CellKey, load_run
    from orchestrator.store.models import Job, Result, Run

    engine = create_engine(f"sqlite:///{db}")
    out = []
    with Session(engine) as s:
        run = s.scalars(select(Run).order_by(Run.created_at.desc())).first()
        if run is None:
            return []
        envs = {CellKey.of(j): (r.document or {}).get("host_environment")
                for r, j in s.execute(select(Result, Job).join(Job, Result.job_id == Job.id)
                                      .where(Job.run_id == run.id)).all()}
        for cell in load_run(s, run.id).cells:
            st = analyze(cell).inference
            env = envs.get(cell.key)
            out.append({
                "cell": cell.key.label(), "state": cell.state, "n": len(cell.latencies_ms),
                "cv": st.cv if st else None, "cv_raw": _cv(cell.latencies_ms) if st else None,
                "outliers": st.outliers if st else None,
                "median_ms": st.median if st else None, "p10_ms": st.p10 if st else None,
                "p90_ms": st.p90 if st else None, "host_environment": env,
            })
    engine.dispose()
    return out


def run_once(label: str, code: Path, work: Path, artifacts: Path) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    env = dict(os.environ, PYTHONPATH=str(code), BENCHFARM_HOME=str(home), BENCHFARM_DB=str(home / "bf.db"),
               BENCHFARM_ARTIFACTS=str(artifacts))
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    sampler = LoadSampler()
    sampler.start()
    busy0, total0 = _cpu_busy()
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "demo", "--spec", str(code / SPEC),
                           "--timeout", "900"], cwd=code, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    busy1, total1 = _cpu_busy()
    sampler.stop.set()
    sampler.join()
    return {
        "arm": label, "code": str(code), "commit": commit, "exit": proc.returncode, "wall_s": round(wall, 1),
        "load1": {"mean": round(statistics.fmean(sampler.load), 2) if sampler.load else None,
                  "max": max(sampler.load, default=None)},
        "runnable_tasks": {"mean": round(statistics.fmean(sampler.runnable), 1) if sampler.runnable else None,
                           "max": max(sampler.runnable, default=None)},
        "machine_cpu_busy": round((busy1 - busy0) / max(1, total1 - total0), 3),
        "cells": _cells(home / "bf.db"),
        **({} if proc.returncode == 0 else {"stderr": proc.stderr[-2000:], "stdout": proc.stdout[-2000:]}),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        cells: dict[str, list[float]] = {}
        for r in runs:
            if r["arm"] == arm:
                for c in r["cells"]:
                    if c["cv"] is not None:
                        cells.setdefault(c["cell"], []).append(c["cv"])
        out[arm] = {cell: {"cv_per_run": [round(v, 4) for v in cvs], "cv_median": round(statistics.median(cvs), 4),
                           "cv_max": round(max(cvs), 4), "runs_at_or_below_5pct": sum(v <= 0.05 for v in cvs)}
                    for cell, cvs in cells.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", action="append", default=[], metavar="NAME=PATH",
                    help="a benchfarm checkout to run (repeatable; default: after=this checkout)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "host_cv.json")
    args = ap.parse_args()
    arms = [(a.split("=", 1)[0], Path(a.split("=", 1)[1]).resolve()) for a in args.arm] or [("after", ROOT)]
    work = Path(tempfile.mkdtemp(prefix="host-cv-"))
    artifacts = work / "artifacts"  # shared: the first run exports, the others reuse the programs
    runs = []
    started = datetime.now(UTC).isoformat()
    for rnd in range(args.rounds):
        for label, code in (arms if rnd % 2 == 0 else arms[::-1]):
            runs.append(run_once(label, code, work, artifacts))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "cells"}),
                  [(c["cell"], c["cv"]) for c in runs[-1]["cells"]], flush=True)
    doc = {"spec": SPEC, "started_at": started, "finished_at": datetime.now(UTC).isoformat(),
           "cpus": os.cpu_count(), "rounds": args.rounds, "summary": summary(runs), "runs": runs,
           "note": "CV = the matrix's CV (stdev/mean, far-out outliers excluded); cv_raw keeps every sample. "
                   "The machine is shared: load1/runnable_tasks say what else ran."}
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc["summary"], indent=1))


if __name__ == "__main__":
    main()

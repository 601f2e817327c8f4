"""Per-job orchestration overhead: submit -> result recorded, minus the benchmark's own time.

Starts a real coordinator worker and a host agent (subprocesses, a private redis-server, a
temporary SQLite file), warms up (export + harness start), then submits N single-job runs of a
trivial program one after the other and measures, for each job:

    overhead = (result recorded_at - run created_at) - (harness finished_at - started_at)

and the per-step timeline (lease, push, validate, ...). Beside it, on the same Redis: the raw
Celery round trip (bench/raw_celery.py: a task that does nothing, benchfarm's Celery settings).
``--compare REF`` measures another commit's code the same way right after (before/after, one
session). Writes bench/results/orchestration_overhead.json.
Usage: python bench/orchestration_overhead.py [--jobs N] [--compare REF]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
name: overhead
models: [tiny_cnn]
backends: [xnnpack]
devices: [host-cpu]
parameters: {input_resolution: [32], warmup: 0, iterations: 1, repeats: 1, timeout_s: 60, profile: false}
"""


def measure(n: int = 30) -> dict:
    """One pass in this process; REDIS_URL names a Redis of this benchmark's own."""
    tmp = Path(tempfile.mkdtemp(prefix="bf-overhead-"))
    os.environ.update(BENCHFARM_HOME=str(tmp), BENCHFARM_DB=str(tmp / "bench.db"),
                      BENCHFARM_ARTIFACTS=str(tmp / "artifacts"))
    from sqlalchemy import select

    from device_inventory.fleet import Fleet
    from orchestrator.celery_app import app
    from orchestrator.coordinator.submit import submit
    from orchestrator.spec.matrix import loads_spec
    from orchestrator.store.db import session
    from orchestrator.store.models import Attempt, Result, Run

    app.conf.broker_url = os.environ["REDIS_URL"]
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", *args], cwd=ROOT,
                              stdout=open(tmp / f"{i}.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
             for i, args in enumerate([["worker", "--queues", "coordinator,export.linux", "--concurrency", "2"],
                                       ["agent", "--driver", "host", "--name", "bench"]])]
    fleet = Fleet.from_url(os.environ["REDIS_URL"])
    spec = loads_spec(SPEC)

    def run_once() -> str:
        run_id, outbox = submit(spec, SPEC, fleet)
        outbox.send(app)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with session() as s:
                if s.get(Run, run_id).finalized:
                    return run_id
            time.sleep(0.02)
        raise TimeoutError(run_id)

    try:
        while not any(d.get("state") == "available" for d in fleet.devices()):
            time.sleep(0.2)
        run_once()  # warm-up: export, harness start
        run_ids = [run_once() for _ in range(n)]
        overheads, steps = [], {}
        segments: dict[str, list[float]] = {}
        with session() as s:
            for run_id in run_ids:
                run = s.get(Run, run_id)
                [job] = run.jobs
                result = s.scalars(select(Result).where(Result.job_id == job.id)).one()
                doc = result.document
                bench_s = (datetime.fromisoformat(doc["finished_at"]) - datetime.fromisoformat(doc["started_at"])
                           ).total_seconds()
                overheads.append((result.recorded_at - run.created_at).total_seconds() - bench_s)
                attempt = s.get(Attempt, result.attempt_id)
                # where the overhead goes, by the timestamps each side wrote (one machine, one clock)
                h_start = datetime.fromisoformat(doc["started_at"]).replace(tzinfo=None)
                h_end = datetime.fromisoformat(doc["finished_at"]).replace(tzinfo=None)
                marks = {"submit_to_dispatched": (run.created_at, attempt.dispatched_at),
                         "dispatched_to_leased": (attempt.dispatched_at, attempt.started_at),
                         "leased_to_harness_start": (attempt.started_at, h_start),
                         "harness_end_to_recorded": (h_end, result.recorded_at)}
                for name, (a, b) in marks.items():
                    if a is not None and b is not None:
                        segments.setdefault(name, []).append((b - a).total_seconds())
                for st in attempt.timeline:
                    steps.setdefault(st["step"], []).append(st["duration_s"])
        out = {
            "jobs": n,
            "overhead_ms": {"median": round(float(np.median(overheads)) * 1000, 2),
                            "p99": round(float(np.percentile(overheads, 99)) * 1000, 2),
                            "mean": round(float(np.mean(overheads)) * 1000, 2),
                            "min": round(float(np.min(overheads)) * 1000, 2)},
            "agent_steps_median_ms": {k: round(float(np.median(v)) * 1000, 2) for k, v in steps.items()},
            "segments_median_ms": {k: round(float(np.median(v)) * 1000, 2) for k, v in segments.items()},
            "note": "submit -> result recorded minus the harness's own benchmark time; host driver, tiny_cnn@32, "
                    "1 iteration; includes planning, Celery dispatch over Redis, lease, health check, "
                    "artifact fetch+verify, harness job hand-off, result validation and recording",
        }
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(30)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def one_pass(root: Path, n: int) -> dict:
    """measure(n) and the raw Celery round trip, in fresh processes with ``root``'s code, on a
    private redis-server."""
    from bench.scale import private_farm, run_python

    out = {}
    with private_farm(root, "bf-overhead-") as (env, _):
        for key, call in (("orchestration", f"measure({n})"), ("raw_celery", f"roundtrip({max(n, 100)})")):
            module = "orchestration_overhead" if key == "orchestration" else "raw_celery"
            code = (f"import json,sys; sys.path.insert(0, {str(root)!r}); from bench.{module} import *; "
                    f"print(json.dumps({call}))")
            out[key] = run_python(code, env, root, 1200)
    return out


def main() -> None:
    from bench.scale import checkout

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--compare", default=None, help="a git ref (e.g. main before this work), measured likewise")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "orchestration_overhead.json"))
    args = ap.parse_args()
    doc: dict = {"benchmark": "orchestration_overhead", "cpu_count": os.cpu_count(),
                 "load_avg_before": os.getloadavg(), "compare": args.compare}
    before = checkout(args.compare) if args.compare else None
    try:
        for label, root in [("after", ROOT)] + ([("before", before)] if before else []):
            doc[label] = one_pass(root, args.jobs)
            print(label, json.dumps(doc[label]), flush=True)
    finally:
        if before:
            shutil.rmtree(before, ignore_errors=True)
    doc["load_avg_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

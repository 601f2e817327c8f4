"""Per-job orchestration overhead: submit -> result recorded, minus the benchmark's own time.

Starts a real coordinator worker and a host agent (subprocesses, Redis DB 15, a temporary
SQLite file), warms up (export + harness start), then submits N single-job runs of a
trivial program one after the other and measures, for each job:

    overhead = (result recorded_at - run created_at) - (harness finished_at - started_at)

and the per-step timeline (lease, push, validate, ...). Writes bench/results/orchestration_overhead.json.
Usage: python bench/orchestration_overhead.py [N]
"""

from __future__ import annotations

import json
import os
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
parameters: {input_resolution: [32], warmup: 0, iterations: 1, repeats: 1, timeout_s: 60}
"""


def main(n: int = 30) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bf-overhead-"))
    os.environ.update(REDIS_URL="redis://127.0.0.1:6379/15", BENCHFARM_HOME=str(tmp),
                      BENCHFARM_DB=str(tmp / "bench.db"), BENCHFARM_ARTIFACTS=str(tmp / "artifacts"))
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
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
                for st in attempt.timeline:
                    steps.setdefault(st["step"], []).append(st["duration_s"])
        out = {
            "jobs": n,
            "overhead_s": {"median": float(np.median(overheads)), "p99": float(np.percentile(overheads, 99)),
                           "mean": float(np.mean(overheads)), "min": float(np.min(overheads))},
            "agent_steps_median_s": {k: float(np.median(v)) for k, v in steps.items()},
            "note": "submit -> result recorded minus the harness's own benchmark time; host driver, tiny_cnn@32, "
                    "1 iteration; includes planning, Celery dispatch over Redis, lease, health check, "
                    "artifact fetch+verify, harness job hand-off, result validation and recording",
        }
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(30)
    dest = ROOT / "bench" / "results" / "orchestration_overhead.json"
    dest.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

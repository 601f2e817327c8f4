"""Coordinator scale-out: how fast 1 and 2 coordinator processes record a backlog of reports.

bench/scale.py runs the fleet and the coordinator at once, on the same 2 cores: the devices
(1,000 threads), Redis and the coordinator compete, and a second coordinator process mostly
takes CPU from the others. This benchmark separates the two phases:

1. **fill**: the simulated fleet of bench/scale.py (same devices, specs, leases, result
   documents) runs every job with NO coordinator running: the reports (``record_attempt``
   messages) and the fleet's device events pile up in Redis; the fleet then stops;
2. **drain**: K real ``benchfarm worker --queues coordinator`` processes start and record the
   backlog (and copy the device events) on an otherwise idle machine.

REAL: submit, the Celery messages, the coordinator workers, record_attempt against the
database (SQLite file, or --database-url postgresql+psycopg2://..., schema reset per point),
the device-event copy. SIMULATED: the devices (bench/scale.py's Sim).

Reported per point: ``recorded_jobs_per_s`` (first to last job recorded), the drain's wall
time, the workers' CPU per job. The scale-out figure is the ratio of 2 processes to 1.

Usage: python bench/coordinator_drain.py [--devices 1000] [--jobs-per-device 6]
          [--processes 1,2] [--repeats 2] [--database-url URL] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scale import (  # noqa: E402
    Sim,
    private_farm,
    recorded_span,
    reset_database,
    run_python,
    start_workers,
    stop_workers,
    worker_cpu,
)

DRAIN_TIMEOUT_S = 600.0


def fill_backlog(n_devices: int, jobs_per_device: int, seed: int) -> dict[str, Any]:
    """Submit the runs and let the simulated fleet run every job with no coordinator: returns
    once every report is published (short jobs: the fill is not what is measured)."""
    sim = Sim(n_devices, jobs_per_device, 1, seed, mean_job_s=0.05)
    posted = [0]
    post = sim.post

    def counting_post(kind: str, payload: dict[str, Any]) -> None:
        post(kind, payload)
        with sim.lock:
            posted[0] += kind == "record"

    sim.post = counting_post  # type: ignore[method-assign]
    inboxes = sim.start_devices()
    t = time.monotonic()
    total = sim.submit()
    while posted[0] < total:
        if sim.errors:
            raise RuntimeError(f"simulated devices failed: {sim.errors[:3]}")
        if time.monotonic() - t > DRAIN_TIMEOUT_S:
            raise RuntimeError(f"only {posted[0]}/{total} reports published after {DRAIN_TIMEOUT_S:.0f} s")
        time.sleep(0.2)
    sim.stop_devices(inboxes)
    return {"jobs": total, "reports": posted[0], "fill_s": round(time.monotonic() - t, 1),
            "fenced_attempts": sim.fenced, "refused_leases": sim.refused}


def terminal_jobs() -> int:
    from sqlalchemy import func, select

    from orchestrator.store.db import session
    from orchestrator.store.models import Job
    from orchestrator.store.states import JOB_TERMINAL

    with session() as s:
        return int(s.scalar(select(func.count()).where(Job.state.in_(JOB_TERMINAL))) or 0)


def machine_busy_s() -> float:
    """CPU seconds every core of the machine spent not idle (/proc/stat): the coordinators, Redis,
    the database server and this process together, to say what the machine allows."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def drain_point(n_devices: int, jobs_per_device: int, processes: int, threads: int, seed: int,
                database_url: str | None, profile: str = "") -> dict[str, Any]:
    """One fill and one drain by ``processes`` coordinator workers, on a fresh Redis and database."""
    with private_farm(ROOT, "bf-drain-") as (env, tmp):
        if database_url:
            env["DATABASE_URL"] = database_url
            reset_database(database_url)
        env["BENCHFARM_OUTBOX_GRACE_S"] = "900"  # nothing is lost here: the reconciler stays out of it
        os.environ.update({k: env[k] for k in ("REDIS_URL", "BENCHFARM_HOME", "BENCHFARM_DB",
                                               "BENCHFARM_ARTIFACTS") if k in env})
        if database_url:
            os.environ["DATABASE_URL"] = database_url
        subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "db", "upgrade"], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        code = (f"import json,sys; sys.path.insert(0, {str(ROOT)!r}); from bench.coordinator_drain import "
                f"fill_backlog; print(json.dumps(fill_backlog({n_devices}, {jobs_per_device}, {seed})))")
        fill = run_python(code, env, ROOT, DRAIN_TIMEOUT_S + 60)
        workers = start_workers(ROOT, env, tmp, processes, threads, profile)
        try:
            os.environ["BENCH_WORKER_PID"] = ",".join(str(w.pid) for w in workers)
            cpu0, busy0, t0 = worker_cpu(), machine_busy_s(), time.time()
            while (done := terminal_jobs()) < fill["jobs"]:
                if time.time() - t0 > DRAIN_TIMEOUT_S:
                    raise RuntimeError(f"only {done}/{fill['jobs']} jobs recorded after {DRAIN_TIMEOUT_S:.0f} s")
                time.sleep(0.25)
            cpu, busy, t_end = worker_cpu() - cpu0, machine_busy_s() - busy0, time.time()
            first, last = recorded_span()
        finally:
            stop_workers(workers)
    return {"processes": processes, "threads_each": threads, **fill,
            "drain_s": round(last - t0, 2), "recorded_jobs_per_s": round((fill["jobs"] - 1) / (last - first), 1),
            "coordinator_cpu_ms_per_job": round(cpu / fill["jobs"] * 1000, 2),
            "coordinator_cpu_cores_used": round(cpu / max(last - t0, 1e-9), 2),
            # everything together (database server and Redis included): near os.cpu_count(), a
            # second coordinator process can only take CPU from the others
            "machine_cpu_cores_used": round(busy / max(t_end - t0, 1e-9), 2),
            "load_avg_after": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--jobs-per-device", type=int, default=6)
    ap.add_argument("--processes", default="1,2")
    ap.add_argument("--threads", type=int, default=2, help="threads per coordinator worker process")
    ap.add_argument("--repeats", type=int, default=2, help="points per process count, alternating")
    ap.add_argument("--database-url", default=None, help="default: a temporary SQLite file per point")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile", default="", metavar="FILE",
                    help="the first worker of the first point under cProfile (its CPU figures are then ~2x)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "coordinator_drain.json"))
    args = ap.parse_args()
    counts = [int(x) for x in args.processes.split(",")]
    points = []
    for rep in range(args.repeats):  # alternating, so a drift of the machine's load hits both alike
        for k in counts:
            t = time.monotonic()
            point = dict(drain_point(args.devices, args.jobs_per_device, k, args.threads, args.seed + rep,
                                     args.database_url, "" if points else args.profile), repeat=rep)
            points.append(point)
            print(json.dumps(point), f"# {time.monotonic() - t:.0f} s wall", flush=True)
    median = {k: round(statistics.median(p["recorded_jobs_per_s"] for p in points if p["processes"] == k), 1)
              for k in counts}
    one = [p for p in points if p["processes"] == counts[0]]
    # the speed-up the cores allow: all of them busy at one process's cost per job
    allowed = round((os.cpu_count() or 1) / statistics.median(p["machine_cpu_cores_used"] for p in one), 2)
    doc = {"benchmark": "coordinator_drain", "cpu_count": os.cpu_count(), "devices": args.devices,
           "jobs_per_device": args.jobs_per_device, "database": args.database_url or "sqlite (temp file)",
           "median_recorded_jobs_per_s": median,
           "speedup_over_1_process": {k: round(v / median[counts[0]], 2) for k, v in median.items()},
           "speedup_the_machine_allows": allowed, "points": points, "real_vs_simulated": __doc__}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({"median_recorded_jobs_per_s": median, "speedup": doc["speedup_over_1_process"],
                      "allowed": allowed}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

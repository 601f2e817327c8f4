"""The coordinator's CPU per job, and where it goes (cProfile), in one process.

REAL: submit (planning, dispatch, the Celery producer publishing run_job to Redis), the
coordinator's Celery task bodies ``attempt_started`` and ``record_attempt`` (contract
validation, recording, finalising, the outbox), the device-event copy into the database, a
temporary SQLite file and a private redis-server.
SIMULATED: the agents. For every run_job message a device takes a lease, marks itself busy
and releases it (the agent's Redis calls, not counted), and reports a virtual-harness result.

Measured: thread CPU time (time.thread_time) of the coordinator's calls only, per job; the
same calls once more under cProfile for the top functions; the result document's contract
validation on its own. ``--compare DIR`` runs the same benchmark on another checkout (e.g. main
before this work) in the same session, so before/after share the machine's load.

Usage: python bench/coordinator_cpu.py [--jobs 600] [--compare DIR] [--out bench/results/coordinator_cpu.json]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("A17-Pro", "A15", "host-cpu")


def _spec(name: str, device_class: str, n_jobs: int) -> str:
    from bench.scale import spec_text

    return spec_text(name, device_class, n_jobs)[0]


def _result(payload: dict[str, Any], token: int, rng: random.Random) -> dict[str, Any]:
    from bench.scale import result_doc

    return result_doc(payload, token, rng, samples=20)


def measure(n_jobs: int, profile: bool) -> dict[str, Any]:
    """One pass in this process (env already points at a private Redis and a fresh DB)."""
    import redis

    from bench.scale import SENDS_STARTED, store_programs, submit_stored
    from device_inventory.fleet import Fleet
    from orchestrator import config, tasks
    from orchestrator.coordinator.device_history import drain_device_events
    from orchestrator.export.artifacts import ArtifactStore
    from orchestrator.spec.matrix import loads_spec

    fleet = Fleet.from_url(config.redis_url())
    raw = redis.Redis.from_url(config.redis_url())
    store = ArtifactStore()
    rng = random.Random(7)
    # 16 devices a class: 48 jobs a wave, about what the 0.5-s copy finds at ~100 jobs/s
    devices = {cls: [f"sim:{cls}:{i}" for i in range(16)] for cls in CLASSES}
    for cls, ids in devices.items():
        for d in ids:
            fleet.register(d, {"device_class": cls, "host": "sim", "driver": "sim"}, heartbeat_ttl=3600)
    prof = cProfile.Profile(time.thread_time) if profile else None  # CPU: waits on Redis/disk are not cost
    cpu: dict[str, float] = {"submit": 0.0, "attempt_started": 0.0, "record_attempt": 0.0, "drain_events": 0.0}

    def timed(step: str, fn: Any, *args: Any) -> Any:
        t = time.thread_time()
        if prof:
            prof.enable()
        try:
            return fn(*args)
        finally:
            if prof:
                prof.disable()
            cpu[step] += time.thread_time() - t

    per_class = n_jobs // len(CLASSES)
    for cls in CLASSES:
        spec = loads_spec(text := _spec(f"cpu-{cls}", cls, per_class))
        store_programs(spec, store)

        def _submit(spec: Any = spec, text: str = text) -> None:  # artifacts exist: the exporter is out of scope
            _, outbox = submit_stored(spec, text, fleet, "nightly", store)
            outbox.send()

        timed("submit", _submit)
    queues = [f"device.{c}" + (f":{p}" if p else "") for c in CLASSES for p in range(10)]
    jobs = 0
    while True:
        # a wave: every device takes a job (the agents' calls, not counted); the housekeeping copy
        # of the device events marks them running; then they report
        leases = []
        for cls, ids in devices.items():
            for dev in ids:
                q = next((q for q in queues if q.startswith(f"device.{cls}") and raw.llen(q)), None)
                if q is None:
                    break
                payload = json.loads(base64.b64decode(json.loads(raw.rpop(q))["body"]))[0][0]
                lease = fleet.acquire(dev, payload["attempt_id"], payload["job_id"], 600)
                leases.append((payload, dev, lease, time.time()))
                if SENDS_STARTED:  # this code's agents still send it (before the lease event replaced it)
                    timed("attempt_started", tasks.attempt_started, {"attempt_id": lease.attempt_id,
                                                                     "device_id": dev, "host": "sim",
                                                                     "lease_token": lease.token})
        if not leases:
            break
        timed("drain_events", drain_device_events, fleet)
        for payload, dev, lease, started in leases:
            fleet.mark_busy(lease)
            fleet.release(lease, "done")
            fleet.record_outcome(dev, False, 3)
            report = {"attempt_id": lease.attempt_id, "job_id": lease.job_id, "device_id": dev, "host": "sim",
                      "lease_token": lease.token, "started_at": started, "outcome": "ok", "timeline": [],
                      "result": _result(payload, lease.token, rng)}
            timed("record_attempt", tasks.record_attempt, report)
            jobs += 1
    timed("drain_events", drain_device_events, fleet)
    out: dict[str, Any] = {"jobs": jobs, "cpu_ms_per_job": round(sum(cpu.values()) / jobs * 1000, 3),
                           "cpu_ms_per_job_by_step": {k: round(v / jobs * 1000, 3) for k, v in cpu.items()}}
    if prof:
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.sort_stats("tottime").print_stats(25)
        out["profile_tottime_top25"] = _rows(buf.getvalue())
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(40)
        out["profile_cumulative_top40"] = _rows(buf.getvalue())
    return out


def worker_pass(n_jobs: int, spy: str = "", profile: str = "") -> dict[str, Any]:
    """The real coordinator worker process (``benchfarm worker --queues coordinator``, 2 threads),
    fed a backlog: every job's attempt_started and record_attempt messages are queued first (as
    agents would have sent them), then the worker starts and drains them. Its CPU from "ready" to
    the last job recorded, per job: Celery's own work included, start-up excluded, nothing
    else competing with it from this benchmark. ``spy``: a py-spy profile of it to that file.
    ``profile``: the worker's threads under cProfile (CPU time), pstats to that file
    (:data:`bench.scale.PROFILED_WORKER`)."""
    import redis
    from sqlalchemy import func, select

    from bench.scale import PROFILED_WORKER, SENDS_STARTED, store_programs, submit_stored, worker_cpu
    from device_inventory.fleet import Fleet
    from orchestrator import config
    from orchestrator.celery_app import COORDINATOR_QUEUE, app
    from orchestrator.export.artifacts import ArtifactStore
    from orchestrator.spec.matrix import loads_spec
    from orchestrator.store.db import session
    from orchestrator.store.models import Job
    from orchestrator.store.states import JOB_TERMINAL

    fleet = Fleet.from_url(config.redis_url())
    raw = redis.Redis.from_url(config.redis_url())
    store, rng = ArtifactStore(), random.Random(7)
    devices = {cls: [f"sim:{cls}:{i}" for i in range(4)] for cls in CLASSES}
    for cls, ids in devices.items():
        for d in ids:
            fleet.register(d, {"device_class": cls, "host": "sim", "driver": "sim"}, heartbeat_ttl=3600)
    for cls in CLASSES:
        spec = loads_spec(text := _spec(f"cpu-{cls}", cls, n_jobs // len(CLASSES)))
        store_programs(spec, store)
        submit_stored(spec, text, fleet, "nightly", store)[1].send()
    queues = [f"device.{c}" + (f":{p}" if p else "") for c in CLASSES for p in range(10)]
    jobs = 0
    with app.producer_or_acquire() as producer:
        while (q := next((q for q in queues if raw.llen(q)), None)) is not None:
            payload = json.loads(base64.b64decode(json.loads(raw.rpop(q))["body"]))[0][0]
            dev = devices[payload["device_class"]][jobs % 4]
            lease = fleet.acquire(dev, payload["attempt_id"], payload["job_id"], 600)
            if SENDS_STARTED:
                app.send_task("benchfarm.attempt_started", args=[{"attempt_id": lease.attempt_id, "device_id": dev,
                                                                  "host": "sim", "lease_token": lease.token}],
                              queue=COORDINATOR_QUEUE, priority=0, producer=producer)
            fleet.mark_busy(lease)
            fleet.release(lease, "done")
            fleet.record_outcome(dev, False, 3)
            app.send_task("benchfarm.record_attempt", args=[{
                "attempt_id": lease.attempt_id, "job_id": lease.job_id, "device_id": dev, "host": "sim",
                "lease_token": lease.token, "started_at": time.time(), "outcome": "ok", "timeline": [],
                "result": _result(payload, lease.token, rng)}],
                queue=COORDINATOR_QUEUE, priority=0, producer=producer)
            jobs += 1
    log = Path(os.environ["BENCHFARM_HOME"]) / "worker.log"
    argv = ["worker", "--queues", "coordinator", "--concurrency", "2"]
    cmd = [sys.executable, "-m", "orchestrator.cli.main", *argv]
    if profile:
        cmd = [sys.executable, "-c", PROFILED_WORKER.format(out=profile), *argv]
    worker = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    spy_proc = None
    try:
        deadline = time.monotonic() + 120
        while "ready." not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the coordinator worker did not start:\n" + log.read_text()[-2000:])
            time.sleep(0.05)
        os.environ["BENCH_WORKER_PID"] = str(worker.pid)
        cpu0, t0 = worker_cpu(), time.monotonic()
        if spy:
            spy_proc = subprocess.Popen(["py-spy", "record", "--pid", str(worker.pid), "--rate", "250", "--format",
                                         "raw", "-o", spy, "--nonblocking"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        while True:
            with session() as s:
                done = s.scalar(select(func.count()).select_from(Job).where(Job.state.in_(JOB_TERMINAL))) or 0
            if done >= jobs:
                break
            if time.monotonic() - t0 > 600:
                raise RuntimeError(f"only {done}/{jobs} jobs recorded after 600 s")
            time.sleep(0.2)
        cpu, wall = worker_cpu() - cpu0, time.monotonic() - t0
    finally:
        if spy_proc is not None:
            spy_proc.send_signal(signal.SIGINT)
            spy_proc.wait(60)
        worker.terminate()
        worker.wait(60)
    return {"jobs": jobs, "worker_cpu_ms_per_job": round(cpu / jobs * 1000, 3), "wall_s": round(wall, 2),
            "recorded_jobs_per_s": round(jobs / wall, 1)}


def validation_cost(n: int = 2000) -> dict[str, float]:
    """The contract check of one result document (what record_attempt runs on every result)."""
    from agents.harness.contract import validate_result

    docs = [_result({"job_id": f"j{i}", "attempt_id": f"a{i}", "backend": "xnnpack"}, 1, random.Random(i))
            for i in range(n)]
    validate_result(docs[0])
    t = time.thread_time()
    for d in docs:
        validate_result(d)
    return {"validate_result_ms": round((time.thread_time() - t) / n * 1000, 4)}


def _rows(text: str) -> list[str]:
    lines = [ln.rstrip() for ln in text.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return [ln.replace(str(ROOT) + "/", "").replace(sys.prefix, "<py>") for ln in lines[start:] if ln.strip()]


def one_pass(checkout: Path, n_jobs: int, call: str) -> dict[str, Any]:
    """``call`` (e.g. ``measure(600, False)``) in a fresh process (fresh engine, Celery producer
    pool) on a fresh DB and private Redis, with ``checkout``'s code."""
    from bench.scale import private_farm, run_python

    code = (f"import json,sys; sys.path.insert(0, {str(checkout)!r}); "
            f"from bench.coordinator_cpu import measure, validation_cost, worker_pass; print(json.dumps({call}))")
    with private_farm(checkout, "bf-cpu-") as (env, _):
        return run_python(code, env, checkout, 900)


def main() -> None:
    from bench.scale import checkout, profile_rows

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=600)
    ap.add_argument("--compare", default=None, help="a git ref (e.g. main before this work), measured likewise")
    ap.add_argument("--spy", action="store_true", help="also a py-spy profile of the real worker (needs py-spy)")
    ap.add_argument("--profile-worker", action="store_true",
                    help="also the real worker under cProfile (every thread, CPU time)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "coordinator_cpu.json"))
    args = ap.parse_args()
    doc: dict[str, Any] = {"benchmark": "coordinator_cpu", "cpu_count": os.cpu_count(),
                           "load_avg_before": os.getloadavg(), "jobs": args.jobs, "commit": _commit(ROOT),
                           "compare": args.compare, "real_vs_simulated": __doc__}
    before = checkout(args.compare) if args.compare else None
    targets = [("after", ROOT)] + ([("before", before)] if before else [])
    try:
        for label, root in targets:
            timing = one_pass(root, args.jobs, f"dict(measure({args.jobs}, False), **validation_cost())")
            worker = one_pass(root, args.jobs, f"worker_pass({args.jobs})")
            profiled = one_pass(root, args.jobs, f"measure({args.jobs}, True)")
            doc[label] = {"in_process": timing, "worker": worker, **{k: v for k, v in profiled.items()
                                                                     if k.startswith("profile")}}
            if args.spy:
                spy = Path(tempfile.mkstemp(prefix="bf-spy-")[1])
                one_pass(root, args.jobs, f"worker_pass({args.jobs}, {str(spy)!r})")
                doc[label]["py_spy_worker_top"] = _spy_top(spy)
                spy.unlink()
            if args.profile_worker:
                stats = Path(tempfile.mkstemp(prefix="bf-prof-")[1])
                doc[label]["worker_solo_profiled"] = one_pass(root, args.jobs,
                                                              f"worker_pass({args.jobs}, profile={str(stats)!r})")
                doc[label]["worker_profile_tottime_top30"] = profile_rows(stats, "tottime", 30)
                doc[label]["worker_profile_cumulative_top40"] = profile_rows(stats, "cumulative", 40)
                stats.unlink()
            print(label, json.dumps({"in_process": timing, "worker": worker}), flush=True)
    finally:
        if before:
            shutil.rmtree(before, ignore_errors=True)
    doc["load_avg_after"] = os.getloadavg()
    if before:
        doc["after_over_before"] = {
            "worker_cpu_ms_per_job": round(doc["after"]["worker"]["worker_cpu_ms_per_job"] /
                                           doc["before"]["worker"]["worker_cpu_ms_per_job"], 3),
            "in_process_cpu_ms_per_job": round(doc["after"]["in_process"]["cpu_ms_per_job"] /
                                               doc["before"]["in_process"]["cpu_ms_per_job"], 3)}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")


def _spy_top(path: Path, n: int = 40) -> list[str]:
    """py-spy's raw samples folded to the functions with the most samples, inclusive."""
    import re
    from collections import Counter

    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"^(.*) (\d+)$", line)
        if not m:
            continue
        total += int(m.group(2))
        for frame in dict.fromkeys(re.sub(r":\d+\)", ")", f) for f in m.group(1).split(";")):
            incl[frame] += int(m.group(2))
    return [f"{v / max(total, 1):6.1%} {k}" for k, v in incl.most_common(n)]


def _commit(checkout: Path) -> str:
    out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or checkout.name


if __name__ == "__main__":
    main()

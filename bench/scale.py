"""Scale benchmark: 100 -> 1,000 simulated devices, on 2 cores.

Default: 3 jobs per device (300 -> 3,000 jobs, ~1-s jobs). The realistic point:
``--devices 1000 --jobs-per-device 10 --mean-job-s 10`` (10,000 jobs; time compressed ~10x).
Each run of jobs holds at most MAX_CELLS_PER_SPEC cells (the spec's repeats bound); a class's
share is split over several runs. One small warm-up run goes through first and is left out
of every figure. A point that records nothing for STALL_S stops with what is stuck.

REAL (production code paths, unmodified):
  * orchestrator.submit / attempt_started / record_attempt / reap against a real
    database (a temporary SQLite file, or --database-url postgresql+psycopg2://...), with
    result documents validated by the harness contract;
  * the Celery producer: every run_job message is published by Outbox.send() to the
    ``device.<class>`` Redis lists with the run's priority (PR 0, manual 3, nightly 6);
  * the coordinator: ONE real ``benchfarm worker --queues coordinator`` process (threads
    pool, --coordinators threads) consuming attempt_started / record_attempt messages that
    the simulated devices publish exactly as agents/runner.py does, and running its own
    housekeeping (lease reaper, device-event drain into the DB) every 5 s;
  * Redis leases with fencing tokens: Fleet.register / acquire / mark_busy / heartbeat /
    release / record_outcome / reap_expired, on a private redis-server (so INFO
    commandstats counts this benchmark only).
SIMULATED:
  * devices: one thread per device; per device class one "dispatcher" thread BRPOPs the
    class's priority lists in Celery's order (device.X, device.X:1, ... device.X:9) and
    hands a message to an idle device, standing in for one Celery solo consumer per
    device (no ack/visibility bookkeeping, no harness, no artifact transfer);
  * service times: synthetic, seconds compressed (mean ~1.3 s real per job, scaled by
    device class and input resolution, lognormal jitter, seeded);
  * a leased device's lease heartbeat (the agent's, once a second) comes from one shared
    thread, pipelined; idle devices' presence heartbeats are not simulated (they add 3 Redis
    ops per device per second, independent of jobs);
  * a device that is refused a lease for an attempt still dispatched puts the message back
    at the end of its queue, as an agent's bounce does; one whose lease was reaped registers
    again, as its agent would; devices send ``attempt_started`` and the report, as the
    measured code's agents/runner.py does.
Devices and dispatchers share the benchmark process; the coordinator worker is its own
process (its CPU comes from /proc). Submitting runs (a CLI/API call) is measured in the
benchmark process with time.thread_time.

Usage: python bench/scale.py [--devices 100,1000] [--jobs-per-device 3]
Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import itertools
import json
import math
import os
import queue
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# device class -> (share of the fleet, service-time multiplier)
CLASSES = {"A17-Pro": (0.25, 0.8), "A16": (0.2, 1.0), "A15": (0.3, 1.2), "M2": (0.15, 0.7), "host-cpu": (0.1, 1.6)}
TRIGGERS = (("nightly", 0.80), ("manual", 0.15), ("pr", 0.05))
RESOLUTIONS = [32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024]
MEAN_SERVICE_S = 1.0  # real seconds at resolution 64, multiplier 1.0 (a ~2 min benchmark compressed ~100x)
# an agent's lease outlives five missed heartbeats (30 s / 5 s by default); the simulated devices'
# shared heartbeat thread is starved by 1,000 device threads on 2 busy cores for seconds at a time
LEASE_TTL_S, HEARTBEAT_S = 10.0, 1.0
MAX_REPEATS = 100  # the spec schema's bound on parameters.repeats
MAX_CELLS_PER_SPEC = len(RESOLUTIONS) * MAX_REPEATS  # 1,700: a larger share is split into several runs
WARMUP_JOBS = 20  # one small run recorded before the clock starts (first connections, compiled statements)
STALL_S = 60.0  # no job recorded for this long: stop and say what is stuck instead of waiting out the budget


def _sends_started() -> bool:
    """Whether the agents of the code measured send ``attempt_started`` (the simulated devices
    send what that code's agents/runner.py sends: two coordinator messages per job, or one)."""
    return "benchfarm.attempt_started" in (ROOT / "agents" / "runner.py").read_text()


SENDS_STARTED = _sends_started()


# ``benchfarm worker ARGV`` with every thread under its own cProfile (CPU time: waits on Redis and
# the disk are not cost; the main thread's start-up is left out), merged into one pstats file ({out})
# when the worker exits
PROFILED_WORKER = """
import cProfile, pstats, sys, threading, time
profiles = [cProfile.Profile(time.thread_time)]
_run = threading.Thread.run
def run(self):
    prof = cProfile.Profile(time.thread_time)
    profiles.append(prof)
    prof.enable()
    try:
        _run(self)
    finally:
        prof.disable()
threading.Thread.run = run
from celery.signals import worker_ready
from orchestrator.cli.main import app
sys.argv = ["benchfarm", *sys.argv[1:]]
worker_ready.connect(lambda **_: profiles[0].enable(), weak=False)  # the main thread from "ready" on
try:
    app()
finally:
    profiles[0].disable()
    pstats.Stats(*profiles).dump_stats({out!r})
"""


def profile_rows(path: Path | str, key: str, n: int) -> list[str]:
    """The top ``n`` functions of a pstats file by ``key`` (tottime, cumulative), paths shortened."""
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(str(path), stream=buf).sort_stats(key).print_stats(n)
    lines = [ln.rstrip() for ln in buf.getvalue().splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return [ln.replace(str(ROOT) + "/", "").replace(sys.prefix, "<py>") for ln in lines[start:] if ln.strip()]


def private_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"redis://127.0.0.1:{port}/0"


def spec_text(name: str, device_class: str, n_jobs: int) -> tuple[str, int]:
    """A spec with about n_jobs (at most MAX_CELLS_PER_SPEC) cells on one class: k resolutions x r
    repeats; returns the text and its real cell count."""
    if n_jobs > MAX_CELLS_PER_SPEC:
        raise ValueError(f"{n_jobs} cells: split them into runs of at most {MAX_CELLS_PER_SPEC}")
    k = min(len(RESOLUTIONS), max(1, math.ceil(n_jobs / MAX_REPEATS)))
    r = max(1, math.ceil(n_jobs / k))
    res = RESOLUTIONS[:k]
    return (f"name: {name}\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [{device_class}]\n"
            f"parameters: {{input_resolution: {res}, warmup: 1, iterations: 5, repeats: {r}, timeout_s: 600}}\n"), k * r


_PROGRAMS: dict[str, str] = {}  # export request key -> stored artifact key


def store_programs(spec: Any, store: Any) -> None:
    """Store a stand-in program for every export request of ``spec`` (the exporter's work:
    keying a torch model imports its code, so it happens here, before anything is timed)."""
    from orchestrator.coordinator.planning import plan
    from orchestrator.export.pipeline import artifact_key
    from orchestrator.export.recipe import request_key

    for cell in plan(spec).cells:
        req = cell.export_request(spec.parameters.compute_units)
        if (request := request_key(req)) not in _PROGRAMS:
            _PROGRAMS[request] = key = artifact_key(req)
            if not store.exists(key):
                store.put(key, b"not a real program", {"model": cell.model,
                                                       "exporter": {"versions": {"executorch": "1.5.1"}}})


def submit_stored(spec: Any, text: str, fleet: Any, trigger: str, store: Any) -> tuple[str, Any]:
    """Submit a run whose programs :func:`store_programs` stored, answering its export requests
    as an exporter with a cache hit does (``benchfarm.export_done``, handled in this process):
    the coordinator learns a torch model's artifact key only from the exporter's answer."""
    from orchestrator.coordinator.exports import export_done
    from orchestrator.coordinator.submit import submit

    run_id, outbox = submit(spec, text, fleet, trigger=trigger, store=store)
    for m in [m for m in outbox.messages if m.task == "benchfarm.export"]:
        key = _PROGRAMS[m.args[0]]
        outbox.messages.remove(m)
        done = export_done(m.args[0], "ok", dict(store.get(key, verify=False).meta, cache_hit=True,
                                                 artifact_key=key), fleet)
        outbox.messages += done.messages
        outbox.staged += done.staged  # its durable copy goes once these are sent (else the reconciler re-sends)
    return run_id, outbox


@contextmanager
def private_farm(root: Path, prefix: str) -> Iterator[tuple[dict[str, str], Path]]:
    """A private redis-server and a temporary home (DB, artifacts) for one measurement: the
    environment for processes running ``root``'s code, and the folder; both gone afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    redis_proc, url = private_redis(tmp)
    env = dict(os.environ, REDIS_URL=url, BENCHFARM_HOME=str(tmp), BENCHFARM_DB=str(tmp / "bench.db"),
               BENCHFARM_ARTIFACTS=str(tmp / "artifacts"), PYTHONPATH=str(root))
    try:
        time.sleep(0.3)
        yield env, tmp
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def run_python(code: str, env: dict[str, str], cwd: Path, timeout: float) -> Any:
    """Run ``code`` in a fresh interpreter; its last line of output, as JSON."""
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def result_doc(payload: dict[str, Any], token: int, rng: random.Random, samples: int = 5) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    return {"schema_version": 1, "job_id": payload["job_id"], "attempt_id": payload["attempt_id"],
            "attempt_token": token, "simulated": True, "producer": {"name": "virtual-harness", "version": "scale"},
            "runtime_version": "1.5.1",
            "device": {"model": "iPhone14,5", "os": "iOS", "os_version": "17.0"}, "backend": payload["backend"],
            "status": "ok", "load_time_ms": 5.0, "latencies_ms": [rng.uniform(1, 3) for _ in range(samples)],
            "peak_memory_bytes": 1 << 20, "started_at": now, "finished_at": now}


class Sim:
    def __init__(self, n_devices: int, jobs_per_device: int, coordinators: int, seed: int,
                 mean_job_s: float | None = None):
        import redis

        from device_inventory.fleet import Fleet
        from orchestrator import config

        # redis-py 8 caps a pool at 100 connections; 1,000 device threads share this client
        self.fleet = Fleet(redis.Redis.from_url(config.redis_url(), decode_responses=True, socket_timeout=30,
                                                max_connections=5000))
        self.n_devices, self.jobs_per_device, self.n_coord = n_devices, jobs_per_device, coordinators
        self.mean_job_s = mean_job_s
        self.service_scale = 1.0  # set at submit so that the planned jobs' mean service time is mean_job_s
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.sent: dict[str, float] = {}
        self.trigger_of_run: dict[str, str] = {}
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.busy: list[tuple[str, str, float, float, float]] = []  # class, device, acquired, released, service
        self.released: dict[str, float] = {}  # attempt id -> wall time its device reported
        self.cpu: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.fenced = self.refused = 0
        self.refused_why: dict[str, int] = defaultdict(int)
        self.leased: set[str] = set()  # devices holding a lease: the shared heartbeat extends theirs
        self.heartbeat_gap_max = 0.0  # the longest time between two lease heartbeats (> LEASE_TTL_S: reaps)
        self.warm_run = ""  # the warm-up run: left out of every figure
        self.done = threading.Event()
        self.errors: list[str] = []
        self.devices: dict[str, list[str]] = {}
        for cls, (share, _) in CLASSES.items():
            n = max(1, round(n_devices * share))
            self.devices[cls] = [f"sim:{cls}:{i:04d}" for i in range(n)]

    # -- set-up ---------------------------------------------------------------------
    def register(self) -> None:
        for cls, ids in self.devices.items():
            for d in ids:
                self.fleet.register(d, {"device_class": cls, "host": "sim", "driver": "sim"}, heartbeat_ttl=3600)

    def planned_specs(self) -> list[tuple[str, str, Any, str, int]]:
        """(class, trigger, spec, text, cells) of every run: each class's share of the jobs by
        trigger, split into runs of at most MAX_CELLS_PER_SPEC cells."""
        from orchestrator.spec.matrix import loads_spec

        out = []
        for cls, ids in self.devices.items():
            for trigger, share in TRIGGERS:
                want = max(1, round(len(ids) * self.jobs_per_device * share))
                parts = math.ceil(want / MAX_CELLS_PER_SPEC)
                for i in range(parts):
                    n = want // parts + (i < want % parts)
                    text, cells = spec_text(f"{trigger}-{cls}-{i}", cls, n)
                    out.append((cls, trigger, loads_spec(text), text, cells))
        return out

    def warm_up(self) -> None:
        """One small run through the whole path before the clock starts: the coordinator's first
        connections, compiled statements and caches are not what a farm's steady state costs."""
        from orchestrator.export.artifacts import ArtifactStore
        from orchestrator.spec.matrix import loads_spec

        store = ArtifactStore()
        cls = max(self.devices, key=lambda c: len(self.devices[c]))
        text, n = spec_text("warm-up", cls, WARMUP_JOBS)
        spec = loads_spec(text)
        store_programs(spec, store)
        self.warm_run, outbox = submit_stored(spec, text, self.fleet, "manual", store)
        self.trigger_of_run[self.warm_run] = "manual"
        self.send(outbox)
        deadline = time.monotonic() + 120
        while self.progress(run_id=self.warm_run)[0] < n:
            if time.monotonic() > deadline or self.errors:
                raise RuntimeError(f"the warm-up run did not finish: {self.errors[:3]}")
            time.sleep(0.2)

    def submit(self) -> int:
        """Create the runs (coordinator CPU), then start the clock and publish their messages, the
        runs' in turn (:func:`interleaved`; the programs are stored before: the exporter's work is
        out of scope)."""
        from orchestrator.export.artifacts import ArtifactStore

        store = ArtifactStore()
        planned = self.planned_specs()
        for _, _, spec, _, _ in planned:
            store_programs(spec, store)
        outboxes, total, expected = [], 0, 0.0
        t = time.thread_time()
        for cls, trigger, spec, text, n in planned:
            run_id, outbox = submit_stored(spec, text, self.fleet, trigger, store)
            expected += sum(_base_service(cls, m.args[0]["input_resolution"]) for m in outbox.messages
                            if m.task == "benchfarm.run_job")
            self.trigger_of_run[run_id] = trigger
            outboxes.append((capp_priority(trigger), outbox))
            total += n
        self.cpu["submit"] += time.thread_time() - t
        if self.mean_job_s:  # E[lognormal(0, 0.3)] = exp(0.045): the jitter keeps the mean
            self.service_scale = self.mean_job_s / (expected / total)
        self.t0, self.t0_wall = time.monotonic(), time.time()
        t = time.thread_time()
        self.send(interleaved([outbox for _, outbox in sorted(outboxes, key=lambda po: -po[0])]))
        self.cpu["publish"] += time.thread_time() - t
        return total

    def send(self, outbox: Any) -> None:
        now = time.monotonic()
        for m in outbox.messages:
            if m.task == "benchfarm.run_job":
                self.sent[m.args[0]["attempt_id"]] = now
        outbox.send()

    # -- simulated devices ----------------------------------------------------------
    def lease_heartbeats(self) -> None:
        """Every leased device's lease and presence heartbeat, once per HEARTBEAT_S: the same
        commands each agent sends for its devices, pipelined (1,000 device threads each making a
        round trip a second would cost this process the CPU the coordinator competes for)."""
        from device_inventory import keys

        last = time.monotonic()
        while not self.done.wait(HEARTBEAT_S):
            with self.lock:
                devices = list(self.leased)
            now = time.time()
            with self.fleet.r.pipeline(transaction=False) as pipe:
                for dev in devices:
                    pipe.zadd(keys.HEARTBEATS, {dev: now + 3600})
                    pipe.zadd(keys.LEASES, {dev: now + LEASE_TTL_S}, xx=True)
                pipe.execute()
            self.heartbeat_gap_max = max(self.heartbeat_gap_max, time.monotonic() - last)
            last = time.monotonic()

    def dispatcher(self, cls: str, idle: queue.Queue, inboxes: dict[str, queue.Queue]) -> None:
        import redis

        r = redis.Redis.from_url(os.environ["REDIS_URL"])
        keys = [f"device.{cls}"] + [f"device.{cls}:{p}" for p in range(1, 10)]
        while not self.done.is_set():
            try:
                dev = idle.get(timeout=0.5)
            except queue.Empty:
                continue
            item = None
            while item is None and not self.done.is_set():
                item = r.brpop(keys, timeout=1)
            if item is None:
                return
            inboxes[dev].put((item[0], item[1]))

    def device(self, cls: str, dev: str, idle: queue.Queue, inbox: queue.Queue) -> None:
        try:
            self._device(cls, dev, idle, inbox)
        except Exception as exc:  # a dead simulated device would stall the run: stop it loudly
            self.errors.append(f"{dev}: {type(exc).__name__}: {exc}")

    def _device(self, cls: str, dev: str, idle: queue.Queue, inbox: queue.Queue) -> None:
        from device_inventory.fleet import LeaseRefused

        while True:
            idle.put(dev)
            item = inbox.get()
            if item is None:
                return
            msg = json.loads(item[1])
            payload = json.loads(base64.b64decode(msg["body"]))[0][0]
            eta = msg.get("headers", {}).get("eta")
            if eta:  # a retry with backoff: Celery would hold it until then
                time.sleep(max(0.0, _eta_s(eta) - time.time()))
            t_acq, t_acq_wall = time.monotonic(), time.time()
            try:
                lease = self.fleet.acquire(dev, payload["attempt_id"], payload["job_id"], LEASE_TTL_S)
            except LeaseRefused as exc:
                with self.lock:
                    self.refused += 1
                    self.refused_why[str(exc).rsplit(": ", 1)[-1]] += 1
                if self.fleet.attempt_state(payload["attempt_id"]) == "dispatched":
                    self.fleet.r.lpush(item[0], item[1])  # what an agent's bounce does: back of the queue
                continue
            with self.lock:
                self.leased.add(dev)
            with self.lock:
                sent = self.sent.get(payload["attempt_id"])  # None: a retry the coordinator published
                if sent is not None and payload["run_id"] != self.warm_run:
                    self.latency[self.trigger_of_run[payload["run_id"]]].append(t_acq - sent)
                service = self.service_scale * _base_service(cls, payload["input_resolution"]) * \
                    self.rng.lognormvariate(0, 0.3) / math.exp(0.045)
                rng = random.Random(self.rng.random())
            if SENDS_STARTED:
                self.post("started", {"attempt_id": lease.attempt_id, "device_id": dev, "host": "sim",
                                      "lease_token": lease.token})
            self.fleet.mark_busy(lease)
            time.sleep(service)
            with self.lock:
                self.leased.discard(dev)
            ours = self.fleet.release(lease, "done")
            t_rel = time.monotonic()
            self.fleet.record_outcome(dev, False, 3)
            if not ours:  # reaped meanwhile: the device went offline; its agent would register it again
                self.fleet.register(dev, {"device_class": cls, "host": "sim", "driver": "sim"}, heartbeat_ttl=3600)
            if payload["run_id"] != self.warm_run:
                with self.lock:
                    self.busy.append((cls, dev, t_acq, t_rel, service))
                    self.fenced += not ours
                    self.released[lease.attempt_id] = time.time()
            self.post("record", {"attempt_id": lease.attempt_id, "job_id": lease.job_id, "device_id": dev,
                                 "host": "sim", "lease_token": lease.token, "started_at": t_acq_wall,
                                 "outcome": "ok", "timeline": [], "result": result_doc(payload, lease.token, rng)})

    def post(self, kind: str, payload: dict[str, Any]) -> None:
        """What agents/runner.py does: a JSON message on the coordinator queue, priority 0."""
        from orchestrator.celery_app import COORDINATOR_QUEUE, app

        app.send_task(f"benchfarm.{'attempt_started' if kind == 'started' else 'record_attempt'}", args=[payload],
                      queue=COORDINATOR_QUEUE, priority=0)

    def progress(self, run_id: str = "") -> tuple[int, float]:
        """(terminal jobs, wall time of the last one) from the database the coordinator writes: of
        ``run_id``, or of every run but the warm-up."""
        from sqlalchemy import func, select

        from orchestrator.store.db import session
        from orchestrator.store.models import Job
        from orchestrator.store.states import JOB_TERMINAL

        which = Job.run_id == run_id if run_id else Job.run_id != self.warm_run
        with session() as s:
            n, last = s.execute(select(func.count(), func.max(Job.finished_at))
                                .where(Job.state.in_(JOB_TERMINAL), which)).one()
        return n, (last.replace(tzinfo=UTC).timestamp() if last else 0.0)

    def stall_report(self) -> dict[str, Any]:
        """What is unfinished (jobs by class and state) and what waits in which queue."""
        from sqlalchemy import func, select

        from orchestrator.store.db import session
        from orchestrator.store.models import Job
        from orchestrator.store.states import JOB_TERMINAL

        with session() as s:
            rows = s.execute(select(Job.device_class, Job.state, func.count()).where(
                Job.state.not_in(JOB_TERMINAL)).group_by(Job.device_class, Job.state)).all()
        queues = {k: self.fleet.r.llen(k) for k in self.fleet.r.scan_iter("device.*")}
        queues["coordinator"] = self.fleet.r.llen("coordinator")
        return {"unfinished": {f"{c}/{st}": n for c, st, n in rows}, "queues": queues,
                "refused": dict(self.refused_why), "fenced": self.fenced}

    def start_devices(self) -> dict[str, queue.Queue]:
        """Register the fleet and start its device, dispatcher and heartbeat threads; the inboxes."""
        self.register()
        threads = [threading.Thread(target=self.lease_heartbeats, daemon=True)]
        inboxes: dict[str, queue.Queue] = {}
        for cls, ids in self.devices.items():
            idle: queue.Queue = queue.Queue()
            for d in ids:
                inboxes[d] = queue.Queue()
                threads.append(threading.Thread(target=self.device, args=(cls, d, idle, inboxes[d]), daemon=True))
            threads.append(threading.Thread(target=self.dispatcher, args=(cls, idle, inboxes), daemon=True))
        for t in threads:
            t.start()
        return inboxes

    def stop_devices(self, inboxes: dict[str, queue.Queue]) -> None:
        self.done.set()
        for q in inboxes.values():
            q.put(None)

    def run(self) -> dict[str, Any]:
        inboxes = self.start_devices()
        self.warm_up()
        stats0 = commandstats(self.fleet.r)
        worker0, cpu0 = worker_cpu(), time.process_time()
        total = self.submit()
        last_change, seen = time.monotonic(), -1
        while (done := self.progress())[0] < total:
            time.sleep(0.5)
            if self.errors:
                raise RuntimeError(f"{len(self.errors)} simulated devices failed: {self.errors[:3]}")
            if done[0] != seen:
                last_change, seen = time.monotonic(), done[0]
            if time.monotonic() - last_change > STALL_S or time.monotonic() - self.t0 > 900:
                raise RuntimeError(f"only {done[0]}/{total} jobs recorded after {time.monotonic() - self.t0:.0f} s: "
                                   f"{json.dumps(self.stall_report())}")
        makespan = done[1] - self.t0_wall
        self.recorded = recorded_span(self.warm_run)
        coordinator_cpu = worker_cpu() - worker0
        ops = {k: v - stats0.get(k, 0) for k, v in commandstats(self.fleet.r).items()}
        self.stop_devices(inboxes)
        return self.report(total, makespan, time.process_time() - cpu0, coordinator_cpu, ops)

    def report(self, total: int, makespan: float, process_cpu: float, coordinator_cpu: float,
               ops: dict[str, int]) -> dict[str, Any]:
        lower = max(sum(s for c, _, _, _, s in self.busy if c == cls) / len(ids)
                    for cls, ids in self.devices.items())
        util_busy = util_cap = 0.0
        for cls, ids in self.devices.items():
            mine = [(a, r) for c, _, a, r, _ in self.busy if c == cls]
            end = max(a for a, _ in mine)  # the class queue was non-empty until its last job started
            util_busy += sum(max(0.0, min(r, end) - max(a, self.t0)) for a, r in mine)
            util_cap += len(ids) * (end - self.t0)
        lag = record_lag(self.released)
        classes = self.per_class()
        pct = lambda xs, p: round(float(np.percentile(xs, p)) * 1000, 1)  # noqa: E731
        all_lat = [x for xs in self.latency.values() for x in xs]
        return {
            "devices": sum(len(ids) for ids in self.devices.values()), "jobs": total,
            "coordinator_processes": len(os.environ["BENCH_WORKER_PID"].split(",")),
            "coordinator_threads_each": self.n_coord,
            "mean_job_s": round(float(np.mean([sv for *_, sv in self.busy])), 3),
            "makespan_s": round(makespan, 2), "lower_bound_s": round(lower, 2),
            "makespan_over_lower_bound": round(makespan / lower, 3),
            "zero_overhead_makespan_over_lower_bound": round(max(
                c["zero_overhead_makespan_s"] for c in classes.values()) / lower, 3),
            "utilisation_while_queued": round(util_busy / util_cap, 3),
            "dispatch_latency_ms": {"p50": pct(all_lat, 50), "p99": pct(all_lat, 99),
                                    **{t: {"p50": pct(xs, 50), "p99": pct(xs, 99)} for t, xs in self.latency.items()}},
            "record_lag_ms": {"p50": pct(lag, 50), "p99": pct(lag, 99)},
            # jobs recorded per second between the first and the last record (the coordinators'
            # throughput when they are the bottleneck, as at 1,000 devices with 1-s jobs)
            "recorded_jobs_per_s": round((total - 1) / max(self.recorded[1] - self.recorded[0], 1e-9), 1),
            "coordinator_worker_cpu_s": round(coordinator_cpu, 2),
            "coordinator_worker_cpu_ms_per_job": round(coordinator_cpu / total * 1000, 2),
            "coordinator_worker_busy_fraction_of_makespan": round(coordinator_cpu / makespan, 3),
            "submit_cpu_ms_per_job": {k: round(v / total * 1000, 2) for k, v in self.cpu.items()},
            "simulation_cpu_s": round(process_cpu - sum(self.cpu.values()), 2),
            "redis_ops_per_job": round(sum(ops.values()) / total, 1),
            "redis_ops_per_job_by_command": {k: round(v / total, 2) for k, v in
                                             sorted(ops.items(), key=lambda kv: -kv[1]) if v / total >= 0.05},
            "fenced_attempts": self.fenced, "refused_leases": self.refused,
            "refused_leases_by_reason": dict(self.refused_why), "warm_up_jobs_left_out": WARMUP_JOBS,
            "sends_attempt_started": SENDS_STARTED,
            "lease_heartbeat_gap_max_s": round(self.heartbeat_gap_max, 2),
            "per_class": classes,
        }

    def per_class(self) -> dict[str, dict[str, float]]:
        """Where a class's makespan goes beyond its lower bound: the ramp (the clock's start to
        its first lease), the tail (its devices' mean idle time before its last release), the
        time between jobs (a lease's release to the device's next lease: dispatch), and the
        makespan a coordinator of no overhead would have had with the same jobs in the same
        order (greedy list scheduling: jobs are not pre-empted, so the last ones' jitter stays)."""
        out = {}
        for cls, ids in self.devices.items():
            mine = sorted((a, r, s) for c, _, a, r, s in self.busy if c == cls)
            last = max(r for _, r, _ in mine)
            per_device: dict[str, list[tuple[float, float]]] = defaultdict(list)
            for c, dev, a, r, _ in sorted(self.busy, key=lambda b: b[2]):
                if c == cls:
                    per_device[dev].append((a, r))
            device_last = [iv[-1][1] for iv in per_device.values()]
            gaps = [b[0] - a[1] for iv in per_device.values() for a, b in zip(iv, iv[1:], strict=False)]
            free_at = [0.0] * len(ids)  # the same jobs, in the order they were leased, with no overhead
            for _, _, service in mine:
                heapq.heapreplace(free_at, free_at[0] + service)
            out[cls] = {"devices": len(ids), "jobs": len(mine),
                        "lower_bound_s": round(sum(s for *_, s in mine) / len(ids), 2),
                        "ramp_s": round(mine[0][0] - self.t0, 2), "makespan_s": round(last - self.t0, 2),
                        "zero_overhead_makespan_s": round(max(free_at), 2),
                        "tail_s": round(last - float(np.mean(device_last)), 2),
                        "between_jobs_ms_p50": round(float(np.median(gaps)) * 1000, 1) if gaps else 0.0}
        return out


def interleaved(outboxes: list[Any]) -> Any:
    """One outbox that sends the runs' messages in turn, one of each run at a time (each run's
    own order kept). The runs stand for separate submitters, which a farm's queues see at once;
    sent one whole run after another by this single thread (~0.3 ms a message), the class
    published last would wait seconds for its first job: a ramp of the benchmark's making."""
    merged = type(outboxes[0])()
    for batch in itertools.zip_longest(*(o.messages for o in outboxes)):
        merged.messages += [m for m in batch if m is not None]
    for o in outboxes:
        merged.events += o.events
        merged.staged += o.staged
    return merged


def capp_priority(trigger: str) -> int:
    from orchestrator.celery_app import PRIORITY

    return PRIORITY[trigger]


def _eta_s(eta: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(eta).timestamp()


def _base_service(cls: str, resolution: int) -> float:
    """A job's mean service time before scaling: by device class and input resolution."""
    return MEAN_SERVICE_S * CLASSES[cls][1] * math.sqrt(resolution / 64)


def worker_cpu() -> float:
    """user+system CPU seconds of the coordinator worker processes (pids in BENCH_WORKER_PID)."""
    total = 0.0
    for pid in os.environ["BENCH_WORKER_PID"].split(","):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def recorded_span(leave_out: str = "") -> tuple[float, float]:
    """Wall times of the first and the last job the coordinators recorded (run ``leave_out`` aside)."""
    from sqlalchemy import func, select

    from orchestrator.store.db import session
    from orchestrator.store.models import Job

    with session() as s:
        first, last = s.execute(select(func.min(Job.finished_at), func.max(Job.finished_at))
                                .where(Job.run_id != leave_out)).one()
    return first.replace(tzinfo=UTC).timestamp(), last.replace(tzinfo=UTC).timestamp()


def record_lag(released: dict[str, float]) -> list[float]:
    """Seconds from a device's report to the coordinator's commit of that attempt."""
    from sqlalchemy import select

    from orchestrator.store.db import session
    from orchestrator.store.models import Attempt

    with session() as s:
        rows = s.execute(select(Attempt.id, Attempt.finished_at).where(Attempt.id.in_(list(released)))).all()
    return [f.replace(tzinfo=UTC).timestamp() - released[a] for a, f in rows if f is not None]


def commandstats(r: Any) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}


def one_point(n_devices: int, jobs_per_device: int, coordinators: int, seed: int,
              database_url: str | None, processes: int = 1, mean_job_s: float | None = None,
              root: Path = ROOT, profile: str = "") -> dict[str, Any]:
    """A fresh process per point: fresh DB engine, Celery pool and Redis, no leftover threads;
    ``processes`` coordinator worker processes of ``coordinators`` threads each, running the code
    of ``root`` (this checkout, or another one: :func:`checkout`). ``profile`` (a pstats file
    to write): the first worker under cProfile (:data:`PROFILED_WORKER`; it costs that worker ~2x
    CPU, so the point's CPU figures are not comparable), its top functions in the point."""
    code = (f"import json,sys; sys.path.insert(0, {str(root)!r}); from bench.scale import Sim; "
            f"print(json.dumps(Sim({n_devices}, {jobs_per_device}, {coordinators}, {seed}, {mean_job_s!r}).run()))")
    workers: list[subprocess.Popen] = []
    with private_farm(root, "bf-scale-") as (env, tmp):
        if database_url:
            env["DATABASE_URL"] = database_url
            reset_database(database_url)
        # the runs are all submitted before any is sent (the clock starts at the first send): their
        # staged messages must not look lost to the reconciler meanwhile (30 s by default)
        env["BENCHFARM_OUTBOX_GRACE_S"] = "900"
        try:
            subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "db", "upgrade"], env=env, cwd=root,
                           check=True, capture_output=True)  # before two workers race to create the schema
            stats = Path(profile or tmp / "unused")
            workers = start_workers(root, env, tmp, processes, coordinators, profile and str(stats))
            pids = ",".join(str(w.pid) for w in workers)
            point = run_python(code, dict(env, BENCH_WORKER_PID=pids), root, 1000)
            point["load_avg_after"] = os.getloadavg()
        finally:
            stop_workers(workers)
        if profile:
            point["worker0_profile_tottime_top30"] = profile_rows(stats, "tottime", 30)
            point["worker0_profile_cumulative_top50"] = profile_rows(stats, "cumulative", 50)
        return point


def reset_database(url: str) -> None:
    """An empty PostgreSQL schema for the next point (a SQLite file is new for each point anyway)."""
    if not url.startswith("postgresql"):
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as c:
        c.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def start_workers(root: Path, env: dict[str, str], tmp: Path, processes: int, coordinators: int,
                  profile: str = "") -> list[subprocess.Popen]:
    """``processes`` coordinator workers (``coordinators`` threads each) of ``root``'s code, once
    each says it is ready; ``profile``: the first one under cProfile, its stats written there."""
    workers: list[subprocess.Popen] = []
    logs = [tmp / f"worker{i}.log" for i in range(processes)]
    try:
        for i, log in enumerate(logs):
            argv = ["worker", "--queues", "coordinator", "--concurrency", str(coordinators),
                    "--hostname", f"coordinator{i}@%h"]
            cmd = [sys.executable, "-c", PROFILED_WORKER.format(out=profile), *argv] if profile and i == 0 \
                else [sys.executable, "-m", "orchestrator.cli.main", *argv]
            workers.append(subprocess.Popen(cmd, env=env, cwd=root, stdout=open(log, "wb"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        for w, log in zip(workers, logs, strict=True):
            while "ready." not in log.read_text(errors="replace"):
                if time.monotonic() > deadline or w.poll() is not None:
                    raise RuntimeError("a coordinator worker did not start:\n" + log.read_text()[-2000:])
                time.sleep(0.2)
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(30)


def checkout(ref: str) -> Path:
    """Another commit's code with this checkout's bench/ laid over it, in a temporary folder:
    "before" measured by the same benchmark, in the same session, on the same machine load."""
    dest = Path(tempfile.mkdtemp(prefix="bf-checkout-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    for f in (ROOT / "bench").glob("*.py"):
        shutil.copy(f, dest / "bench" / f.name)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", default="100,1000")
    ap.add_argument("--jobs-per-device", type=int, default=3)
    ap.add_argument("--coordinators", type=int, default=2, help="threads per coordinator worker process")
    ap.add_argument("--processes", default="1", help="coordinator worker processes, e.g. 1,2 (one point each)")
    ap.add_argument("--mean-job-s", type=float, default=None,
                    help="scale service times so the jobs' mean is this (default: ~1.3 s, unscaled)")
    ap.add_argument("--compare", default=None, help="a git ref measured the same way after each point (before)")
    ap.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile-worker", default="", metavar="DIR",
                    help="the first coordinator worker under cProfile: its top functions in each point, "
                         "the pstats files in DIR")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    args = ap.parse_args()
    before = checkout(args.compare) if args.compare else None
    points = []
    try:
        for n in (int(x) for x in args.devices.split(",")):
            for procs in (int(x) for x in args.processes.split(",")):
                for label, root in [("after", ROOT)] + ([("before", before)] if before else []):
                    t = time.monotonic()
                    point = one_point(n, args.jobs_per_device, args.coordinators, args.seed, args.database_url,
                                      procs, args.mean_job_s, root, args.profile_worker and str(
                                          Path(args.profile_worker) / f"worker0-{n}-{procs}-{label}.pstats"))
                    points.append(dict(point, code=label if before else "this checkout"))
                    print(json.dumps(points[-1]), f"# {time.monotonic() - t:.0f} s wall", flush=True)
    finally:
        if before:
            shutil.rmtree(before, ignore_errors=True)
    doc = {"benchmark": "scale", "cpu_count": os.cpu_count(), "database": args.database_url or "sqlite (temp file)",
           "mean_service_s_at_64px": MEAN_SERVICE_S, "lease_ttl_s": LEASE_TTL_S, "heartbeat_s": HEARTBEAT_S,
           "jobs_per_device": args.jobs_per_device, "mean_job_s_asked": args.mean_job_s,
           "compare": args.compare, "coordinator_threads": args.coordinators, "points": points,
           "real_vs_simulated": __doc__}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The raw Celery + Redis round trip, beside which orchestration overhead is quoted.

A Celery app with benchfarm's own configuration (``orchestrator.celery_app.make_app``: JSON,
acks late, prefetch 1, priority lists, task events) and one task that does nothing but
answer on a Redis list. ``roundtrip(n)`` starts one worker of it (threads pool, like the
coordinator), sends ``n`` tasks one after the other and times send -> answer received, and
the worker's CPU per task (from /proc).

Usage: python bench/raw_celery.py [N]   (REDIS_URL: a Redis of your own; uses DB 14)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from orchestrator.celery_app import make_app  # noqa: E402

QUEUE = "rawping"
app = make_app()
app.conf.update(include=[], task_queues=None, task_default_queue=QUEUE)


_client: list[redis.Redis] = []


@app.task(name="bench.rawping")
def rawping(reply_to: str, sent_at: float) -> None:
    if not _client:
        _client.append(redis.Redis.from_url(app.conf.broker_url))
    _client[0].lpush(reply_to, json.dumps([sent_at, time.time()]))


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def roundtrip(n: int = 200, concurrency: int = 2) -> dict[str, Any]:
    import numpy as np

    url = app.conf.broker_url
    r = redis.Redis.from_url(url)
    log = Path(tempfile.mkstemp(prefix="bf-rawcelery-", suffix=".log")[1])
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "bench.raw_celery", "worker", "-Q", QUEUE,
                               "--pool=threads", f"--concurrency={concurrency}", "--without-gossip",
                               "--without-mingle", "--loglevel=INFO"], cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=open(log, "wb"),
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "ready." not in log.read_text(errors="replace"):  # started, connected, consuming
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the raw Celery worker did not start:\n" + log.read_text()[-2000:])
            time.sleep(0.1)
        times, reply = [], f"bench.rawping.reply.{os.getpid()}"
        for i in range(n + 20):
            if i == 20:  # after a warm-up: connections, pools, the first task's imports
                cpu0 = proc_cpu(worker.pid)
            t = time.perf_counter()
            rawping.apply_async(args=[reply, time.time()], queue=QUEUE, priority=0)
            try:
                answer = r.brpop([reply], timeout=120)
            except redis.TimeoutError:
                answer = None
            if answer is None:
                raise RuntimeError("no answer from the raw Celery worker:\n" + log.read_text()[-2000:])
            if i >= 20:
                times.append(time.perf_counter() - t)
        cpu = proc_cpu(worker.pid) - cpu0
    finally:
        worker.terminate()
        worker.wait(30)
        log.unlink(missing_ok=True)
    ms = np.array(times) * 1000
    return {"tasks": n, "roundtrip_ms": {"median": round(float(np.median(ms)), 3),
                                         "p99": round(float(np.percentile(ms, 99)), 3)},
            "worker_cpu_ms_per_task": round(cpu / n * 1000, 3)}


if __name__ == "__main__":
    print(json.dumps(roundtrip(int(sys.argv[1]) if len(sys.argv) > 1 else 200), indent=1))

"""Chaos: the three faults that used to leave work stuck for an hour or for ever, with real
worker, exporter and host-agent processes, a real database and Redis. The reconciler runs every
second and re-sends what is older than 4 s (``BENCHFARM_RECONCILE_*``; 30 s / 5 min deployed),
so the stated bound here is seconds where a deployment's is minutes.

- an exporter killed (SIGKILL) mid-export: its message stayed unacked for the broker's 1-hour
  visibility timeout and its lock held for 20 minutes;
- a consumer that took a job and died before claiming it: the same hour;
- a submitter that died after its commit, before publishing: its jobs waited for ever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job
from tests.conftest import Procs, wait_until
from tests.reliability import chaos

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

RECONCILE = {"BENCHFARM_RECONCILE_EVERY_S": "1", "BENCHFARM_RECONCILE_AFTER_S": "4",
             "BENCHFARM_OUTBOX_GRACE_S": "2", "BENCHFARM_EXPORT_BEAT_TTL_S": "15",
             "BENCHFARM_EXPORT_LOCK_TTL_S": "20"}
# every fault here recovers within this (the run, export included, takes a few seconds more)
BOUND_S = 240
SPEC = ("name: {name}\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n"
        "parameters: {{input_resolution: [40], warmup: 1, iterations: 5, profile: false, timeout_s: 60}}\n")
# takes one job from the host-cpu queue and dies holding it (no ack, no cleanup)
TAKER = ("import os\nfrom orchestrator.celery_app import app\nconn = app.connection_for_read()\n"
         "conn.SimpleQueue('device.host-cpu').get(timeout=600)\nprint('took', flush=True)\nos._exit(9)\n")
# commits a run and dies before sending its messages
SUBMITTER = ("import os, sys\nfrom device_inventory.fleet import Fleet\nfrom orchestrator import config\n"
             "from orchestrator.coordinator.submit import submit\nfrom orchestrator.spec.matrix import loads_spec\n"
             "text = sys.stdin.read()\nrun_id, _ = submit(loads_spec(text), text, Fleet.from_url(config.redis_url()))\n"
             "print(run_id, flush=True)\nos._exit(0)\n")


def _job_state(run_id: str) -> str:
    with session() as s:
        return s.scalars(select(Job.state).where(Job.run_id == run_id)).one()


def _attempts(run_id: str) -> list[str]:
    with session() as s:
        return list(s.scalars(select(Attempt.state).join(Job).where(Job.run_id == run_id)))


def _python(code: str, env: dict[str, str], stdin: str = "") -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    return proc


def test_stuck_work_recovers_with_nothing_lost_or_doubled(rel_env: dict[str, str], rel_procs: Procs, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # a private artifact store: the export must really run, so the kill lands in it
    env = dict(RECONCILE, BENCHFARM_ARTIFACTS=str(tmp_path / "artifacts"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rel_procs.env = dict(rel_procs.env, **env)
    fleet = Fleet.from_url(rel_env["REDIS_URL"])
    rel_procs.start("coordinator", "worker", "--queues", "coordinator", "--hostname", "coordinator@stuck")
    exporter = rel_procs.start("exporter", "worker", "--queues", "export.linux", "--concurrency", "1",
                               "--hostname", "exporter1@stuck")

    # 1. the exporter is killed mid-export
    run_a = chaos.submit(fleet, SPEC.format(name="killed-exporter"))
    wait_until(lambda: fleet.r.keys("bf:export-running:*"), BOUND_S, "the export to start", every=0.02)
    os.killpg(exporter.pid, signal.SIGKILL)
    t_kill = time.monotonic()
    # 2. a consumer takes the job the redone export dispatches, and dies before claiming it
    taker = _python(TAKER, rel_procs.env)
    rel_procs.start("exporter2", "worker", "--queues", "export.linux", "--concurrency", "1",
                    "--hostname", "exporter2@stuck")
    wait_until(lambda: _job_state(run_a) == "waiting-for-device", BOUND_S, "the killed export to be redone")
    t_export = time.monotonic() - t_kill
    assert taker.stdout is not None and taker.stdout.read().strip() == "took" and taker.wait(30) == 9
    t_taken = time.monotonic()
    rel_procs.start("agent", "agent", "--driver", "host", "--name", "stuck", "--lease-ttl", "3")
    done_a = chaos.wait_finalized(run_a, rel_procs, timeout=BOUND_S)

    # 3. a submitter commits its run and dies before publishing
    submitter = _python(SUBMITTER, rel_procs.env, SPEC.format(name="dead-submitter"))
    assert submitter.stdout is not None
    run_b = submitter.stdout.read().strip()
    t_submitted = time.monotonic()
    assert submitter.wait(30) == 0 and run_b
    done_b = chaos.wait_finalized(run_b, rel_procs, timeout=BOUND_S)

    log = rel_procs.log("coordinator")
    assert "export:" in log and "run_job:" in log, log[-3000:]  # both were re-sent by the reconciler
    out_a, out_b = chaos.check_invariants(run_a, fleet), chaos.check_invariants(run_b, fleet)
    # the re-sent copies ran the same attempt once: no retry was spent, no second result stored
    assert _attempts(run_a) == ["succeeded"] and _attempts(run_b) == ["succeeded"]
    for out in (out_a, out_b):
        assert (out.lost, out.duplicates) == (0, 0)
    print("\n" + out_a.line("exporter killed mid-export (export redone)", t_export))
    print(out_a.line("job taken by a consumer that died unclaimed (agent start included)", done_a - t_taken))
    print(out_b.line("submitter died after commit, before publish", done_b - t_submitted))

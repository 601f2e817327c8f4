"""The profiling pass through the real farm: a worker, a host agent, ExecuTorch on this CPU.

A pass that aborts the runtime (an intermediate-output buffer far too small: an assert in
etdump_flatcc kills the harness process) must cost that cell its profile only: the
timing result is recorded, the run succeeds, and the same agent runs the next job."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from orchestrator.store.db import session
from orchestrator.store.models import Job, Result
from tests.conftest import wait_until

SPEC = """\
name: profile-{name}
models: [tiny_cnn]
backends: [xnnpack]
devices: [host-cpu]
parameters: {{input_resolution: [64], warmup: 1, iterations: 6, timeout_s: 120, profile_iterations: 4{extra}}}
"""


def submit(env, tmp_path, name: str, extra: str = "") -> subprocess.CompletedProcess:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name, extra=extra))
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "submit", str(spec), "--wait",
                           "--timeout", "300"], env=env, capture_output=True, text=True, timeout=360)


def result_of(name: str) -> Result:
    with session() as s:
        job = s.scalars(select(Job).where(Job.run.has(name=f"profile-{name}"))).one()
        return s.scalars(select(Result).where(Result.job_id == job.id)).one()


def test_an_aborting_profiler_keeps_the_timing_result_and_the_agent(bf_env, procs, tmp_path):
    from device_inventory.fleet import Fleet

    procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
    agent = procs.start("agent", "agent", "--driver", "host", "--name", "prof")
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    wait_until(lambda: any(d.get("state") == "available" for d in fleet.devices()), 60, "the host device")

    out = submit(bf_env, tmp_path, "abort", ", profile_debug_buffer_bytes: 64")
    assert out.returncode == 0, out.stdout + out.stderr + procs.log("agent")[-3000:]
    aborted = result_of("abort")
    assert len(aborted.document["latencies_ms"]) == 6 and aborted.median_ms > 0  # timing recorded
    prof = aborted.document["profile"]
    assert prof["status"] == "error" and prof["error"]["category"] == "profiler_aborted", prof
    assert "exit status -6" in prof["error"]["message"]  # SIGABRT, seen by the driver

    assert agent.poll() is None  # the agent survived; its next job gets a fresh harness
    out = submit(bf_env, tmp_path, "after")
    assert out.returncode == 0, out.stdout + out.stderr
    after = result_of("after")
    assert after.document["profile"]["status"] == "ok" and after.document["profile"]["operators"]
    assert agent.poll() is None

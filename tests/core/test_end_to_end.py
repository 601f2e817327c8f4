"""The walking skeleton end to end, with real parts: matrix spec -> Celery over Redis ->
a real agent process -> ExecuTorch on this CPU -> the database -> the matrix table."""

import subprocess
import sys

import redis
from sqlalchemy import func, select

from agents.harness.contract import validate_result
from orchestrator.store.db import session
from orchestrator.store.models import Artifact, Attempt, Job, Result, Run
from tests.conftest import wait_until

SPEC = """\
name: e2e
models: [tiny_cnn]
backends: [xnnpack]
devices: [host-cpu]
parameters:
  input_resolution: [64]
  warmup: 1
  iterations: 5
  repeats: 2
  timeout_s: 60
"""


def cli(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], env=dict(env, COLUMNS="250"),
                          capture_output=True, text=True, timeout=timeout)


def device_available(env):
    from device_inventory.fleet import Fleet

    fleet = Fleet.from_url(env["REDIS_URL"])
    return any(d.get("state") == "available" and d.get("device_class") == "host-cpu" for d in fleet.devices())


def test_submit_wait_status_and_matrix_with_real_worker_and_agent(bf_env, procs, tmp_path):
    procs.env = dict(procs.env, BENCHFARM_TASK_LOG_LEVEL="INFO")  # the export tasks' lines are counted below
    procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
    procs.start("agent", "agent", "--driver", "host", "--name", "e2e")
    wait_until(lambda: device_available(bf_env), 60, "the host device to register")
    spec = tmp_path / "e2e.yaml"
    spec.write_text(SPEC)

    out = cli(bf_env, "submit", str(spec), "--wait", "--timeout", "240")
    assert out.returncode == 0, out.stdout + out.stderr + procs.log("worker") + procs.log("agent")
    assert "Host CPU" in out.stdout and "XNNPACK" in out.stdout and "tiny_cnn" in out.stdout
    assert out.stdout.rstrip().endswith("succeeded")
    assert "simulated" not in out.stdout  # real measurements are not labelled as simulation

    with session() as s:
        run = s.scalars(select(Run)).one()
        assert run.finalized and run.status == "succeeded"
        assert run.summary["jobs"] == {"succeeded": 2}
        results = s.scalars(select(Result)).all()
        assert len(results) == 2 and len({r.job_id for r in results}) == 2
        for r in results:
            validate_result(r.document)
            assert r.simulated is False and r.median_ms > 0 and r.p10_ms <= r.median_ms <= r.p90_ms
        attempts = s.scalars(select(Attempt)).all()
        assert all(a.state == "succeeded" and a.lease_token > 0 for a in attempts)
        steps = {st["step"] for a in attempts for st in a.timeline}
        assert {"health", "fetch_artifact", "prepare", "run", "validate", "cleanup"} <= steps

    status = cli(bf_env, "status", run.id)
    assert status.returncode == 0 and status.stdout.count("succeeded") >= 2

    # a second run of the same spec reuses the artifact without asking the exporter again: the
    # exporter keyed the torch source (the coordinator cannot without torch) and advertises the
    # code identity it keyed it with, so submit dispatches the remembered key at once
    with session() as s:
        first_keys = {j.artifact_key for j in s.scalars(select(Job)).all()}
    assert len(first_keys) == 1 and "" not in first_keys
    second = cli(bf_env, "submit", str(spec), "--wait", "--timeout", "240")
    assert second.returncode == 0, second.stdout + second.stderr
    with session() as s:
        assert {j.artifact_key for j in s.scalars(select(Job)).all()} == first_keys
        art = s.get(Artifact, first_keys.pop())
        assert art is not None and art.status == "ready"
    # one export task in all (the store may hold the program already from an earlier test: the
    # first answer's cache_hit says nothing; that the exporter was asked once does)
    assert procs.log("worker").count("Task benchfarm.export[") == 2, procs.log("worker")  # received, succeeded


def test_a_typo_gives_file_and_line_and_queues_nothing(bf_env, tmp_path):
    spec = tmp_path / "typo.yaml"
    spec.write_text(SPEC.replace("[xnnpack]", "[xnnpack, MSP]"))
    out = cli(bf_env, "submit", str(spec))
    assert out.returncode == 2
    assert f"{spec}:3: backends[1]: unknown backend 'MSP'" in out.stderr.replace("\n", "")
    with session() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 0
        assert s.scalar(select(func.count()).select_from(Job)) == 0
    client = redis.Redis.from_url(bf_env["REDIS_URL"])
    assert not [k for k in client.keys("*") if k.startswith(b"device.") or k.startswith(b"export.")]

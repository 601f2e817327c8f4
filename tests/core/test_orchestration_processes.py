"""Scheduling with real processes: two agents on one device class, PR priority over
nightly work, and an agent SIGKILLed mid-benchmark."""

import os
import signal
import time
from datetime import datetime

from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.submit import submit as submit_run
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result, Run
from tests.conftest import wait_until


def spec(name, repeats, iterations, timeout_s=120):
    return f"""\
name: {name}
models: [tiny_cnn]
backends: [xnnpack]
devices: [host-cpu]
parameters: {{input_resolution: [64], warmup: 1, iterations: {iterations}, repeats: {repeats}, timeout_s: {timeout_s},
             run_rules: {{all: {{min_iterations: 0, min_duration_s: 0}}}}}}
"""
# light run rules, stated: this tests scheduling, not measurement (nightly's default is 1024 iterations / 60 s)


def submit(fleet, text, trigger):
    run_id, outbox = submit_run(loads_spec(text), text, fleet, trigger=trigger)
    outbox.send()
    return run_id


def start_stack(procs, agents, lease_ttl="30"):
    procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "3")
    for name in agents:
        procs.start(name, "agent", "--driver", "host", "--name", name, "--lease-ttl", lease_ttl)


def available_hosts(fleet):
    return [d for d in fleet.devices() if d.get("device_class") == "host-cpu" and d.get("state") == "available"]


def finalized(run_id):
    with session() as s:
        return s.get(Run, run_id).finalized


def warm_up(fleet, n_devices):
    """Export the artifact and start every device's harness before measuring order."""
    wait_until(lambda: len(available_hosts(fleet)) >= n_devices, 90, f"{n_devices} host devices")
    run_id = submit(fleet, spec("warm", n_devices * 2, 2), "manual")
    wait_until(lambda: finalized(run_id), 300, "the warm-up run")


def test_pr_jobs_overtake_queued_nightly_work_and_every_job_has_one_result(bf_env, procs):
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    start_stack(procs, ["agent-a", "agent-b"])
    warm_up(fleet, 2)
    nightly = submit(fleet, spec("nightly", 12, 400), "nightly")
    wait_until(lambda: _started(nightly) >= 2, 60, "nightly jobs to start")
    pr_submitted = datetime.utcnow()
    pr = submit(fleet, spec("pr", 2, 400), "pr")
    wait_until(lambda: finalized(nightly) and finalized(pr), 300, "both runs to finish")
    with session() as s:
        pr_jobs = s.scalars(select(Job).where(Job.run_id == pr)).all()
        last_pr_start = max(j.started_at for j in pr_jobs)
        overtaken = s.scalars(select(Job).where(Job.run_id == nightly, Job.started_at > pr_submitted)).all()
        # nightly jobs that were still queued when the PR came in start after the PR's jobs,
        # except at most one in flight per device (prefetch 1, never preempted)
        early = [j for j in overtaken if j.started_at < last_pr_start]
        assert len(early) <= 2, [(j.id, j.started_at) for j in early]
        assert len(overtaken) >= 6
        for run_id in (nightly, pr):
            run = s.get(Run, run_id)
            assert run.status == "succeeded"
            jobs = s.scalars(select(Job).where(Job.run_id == run_id)).all()
            results = s.scalars(select(Result).join(Job).where(Job.run_id == run_id)).all()
            assert len(results) == len(jobs) and len({r.job_id for r in results}) == len(jobs)


def _started(run_id):
    with session() as s:
        return len(s.scalars(select(Job).where(Job.run_id == run_id, Job.started_at.is_not(None))).all())


def test_an_agent_killed_mid_benchmark_loses_nothing(bf_env, procs):
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    start_stack(procs, ["victim", "survivor"], lease_ttl="3")
    warm_up(fleet, 2)
    # long enough (tens of seconds on an idle machine: each iteration also preprocesses a 1080p
    # frame) that the kill lands mid-benchmark
    run_id = submit(fleet, spec("long", 1, 30000, timeout_s=600), "manual")

    def running_attempt():
        with session() as s:
            return s.scalars(select(Attempt).where(Attempt.state == "running")).first()

    attempt = wait_until(running_attempt, 60, "the benchmark to start")
    killed = "victim" if ":victim" in attempt.device_id else "survivor"
    proc = dict(procs.procs)[killed]
    os.killpg(proc.pid, signal.SIGKILL)  # the whole agent: supervisor, device worker, harness
    t_kill = time.monotonic()
    with session() as s:
        assert s.get(Attempt, attempt.id).state == "running"  # the kill really was mid-benchmark
    wait_until(lambda: finalized(run_id), 420, "the run to finish on the other agent")
    recovery = time.monotonic() - t_kill
    with session() as s:
        run = s.get(Run, run_id)
        attempts = s.scalars(select(Attempt).order_by(Attempt.number)).all()
        assert run.status == "succeeded"
        assert [a.state for a in attempts if a.job.run_id == run_id][-2:] == ["fenced", "succeeded"]
        [mine] = s.scalars(select(Result).join(Job).where(Job.run_id == run_id)).all()
        assert mine.attempt_id == attempts[-1].id and f":{killed}" not in mine.device_id
    assert not [d for d in fleet.devices() if d.get("state") in ("leased", "busy")]
    print(f"\nagent SIGKILL: jobs=1 results=1 duplicates=0 lost=0 recovery={recovery:.1f}s")


def test_a_label_selector_runs_only_on_devices_with_that_label(bf_env, procs):
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "3")
    procs.start("plain", "agent", "--driver", "host", "--name", "plain")
    procs.start("lab", "agent", "--driver", "host", "--name", "lab", "--label", "lab-b")
    wait_until(lambda: len(available_hosts(fleet)) >= 2, 90, "2 host devices")
    labelled = [d["id"] for d in fleet.devices() if d.get("labels") == "lab-b"]
    assert len(labelled) == 1 and labelled[0].startswith("host:")
    text = spec("labels", 4, 2).replace("devices: [host-cpu]", "devices: ['host-cpu label=lab-b']")
    run_id = submit(fleet, text, "manual")
    wait_until(lambda: finalized(run_id), 300, "the labelled run")
    with session() as s:
        results = s.scalars(select(Result).join(Job).where(Job.run_id == run_id)).all()
        selectors = {j.device_selector for j in s.scalars(select(Job).where(Job.run_id == run_id))}
    assert selectors == {"host-cpu label=lab-b"}
    assert len(results) == 4 and {r.device_id for r in results} == set(labelled)

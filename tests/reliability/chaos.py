"""Shared machinery for the chaos scenarios: a virtual iOS fleet and a real stack
(coordinator worker + agent subprocesses), submitting a small matrix, and the invariants
every scenario checks once its fault has been injected."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from agents.virtual.testing import FleetHandle, running_fleet
from device_inventory.fleet import Fleet
from orchestrator.coordinator.submit import submit as submit_run
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result, Run
from orchestrator.store.states import JOB_TERMINAL
from tests.conftest import Procs, wait_until

# min_run_s keeps every benchmark busy for a while, so faults land mid-run
FLEET = """\
version: 1
seed: 11
defaults: {{tls: false, time_compression: 200, min_run_s: {min_run_s}}}
hosts:
  - name: chaos
    devices:
      - {{product_type: "iPhone14,5", ios: "{ios}", count: {count}}}
"""
LEASE_TTL = "3"
# the iOS driver allows a job timeout_s + this for launch and model load before a hung
# harness becomes a `timeout` (60 s by default, for cold CoreML compiles on real phones);
# a virtual harness starts in well under a second, so the hang scenario need not wait 60 s
IOS_STARTUP_ALLOWANCE_S = "5"


def spec(name: str, repeats: int, timeout_s: int = 20) -> str:
    return (f"name: {name}\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [A15]\n"
            f"parameters: {{input_resolution: [64], warmup: 1, iterations: 20, repeats: {repeats}, "
            f"timeout_s: {timeout_s}}}\n")


@contextmanager
def virtual_fleet(tmp_path: Path, count: int, min_run_s: float = 1.5, ios: str = "16.6") -> Iterator[FleetHandle]:
    """``ios``: 16.6 launches through DVT over lockdown, 17.4+ through the CoreDeviceProxy tunnel."""
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET.format(count=count, min_run_s=min_run_s, ios=ios))
    with running_fleet(path) as handle:
        yield handle


def start_stack(procs: Procs, vfleet: FleetHandle, workers: int = 1, **env: str) -> None:
    procs.env = dict(procs.env, BENCHFARM_COOL_DOWN_POLL_S="1", BENCHFARM_COOL_DOWN_MAX_S="4", **env)
    for i in range(workers):
        queues = "coordinator,export.linux" if i == 0 else "coordinator"
        procs.start(f"worker{i}", "worker", "--queues", queues, "--concurrency", "3",
                    "--hostname", f"coordinator{i}@chaos")
    procs.start("agent", "agent", "--driver", "ios", "--usbmux", vfleet.usbmux_address, "--name", "chaos",
                "--lease-ttl", LEASE_TTL, "--ios-startup-allowance", IOS_STARTUP_ALLOWANCE_S)


def a15(fleet: Fleet, state: str | None = None) -> list[dict[str, str]]:
    return [d for d in fleet.devices() if d.get("device_class") == "A15" and state in (None, d.get("state"))]


def wait_devices(fleet: Fleet, n: int) -> None:
    wait_until(lambda: len(a15(fleet, "available")) >= n, 60, f"{n} virtual A15s to register")


def submit(fleet: Fleet, text: str) -> str:
    run_id, outbox = submit_run(loads_spec(text), text, fleet, trigger="manual")
    outbox.send()
    return run_id


def finalized(run_id: str) -> bool:
    with session() as s:
        return bool(s.get(Run, run_id).finalized)


def running_attempt(run_id: str) -> Attempt | None:
    with session() as s:
        return s.scalars(select(Attempt).join(Job).where(Job.run_id == run_id, Attempt.state == "running")).first()


@dataclass
class Outcome:
    jobs: int
    results: int
    duplicates: int
    lost: int
    attempts: list[tuple[str, str, str]]  # (state, error_category, device_id)

    def line(self, scenario: str, recovery_s: float) -> str:
        return (f"{scenario}: jobs={self.jobs} results={self.results} duplicates={self.duplicates} "
                f"lost={self.lost} recovery={recovery_s:.1f}s")


def check_invariants(run_id: str, fleet: Fleet, expect_succeeded: bool = True) -> Outcome:
    """The invariants of every scenario; returns the counts for the figure line."""
    with session() as s:
        run = s.get(Run, run_id)
        jobs = s.scalars(select(Job).where(Job.run_id == run_id)).all()
        results = s.scalars(select(Result).join(Job).where(Job.run_id == run_id)).all()
        attempts = s.scalars(select(Attempt).join(Job).where(Job.run_id == run_id).order_by(Attempt.number)).all()
        # run finalised (once: a compare-and-set), and its summary agrees with the final job states
        assert run.finalized and run.status and run.finished_at
        counts: dict[str, int] = {}
        for j in jobs:
            counts[j.state] = counts.get(j.state, 0) + 1
        assert run.summary["jobs"] == counts, (run.summary, counts)
        # every job terminal; exactly one result per succeeded job, none for any other
        assert all(j.state in JOB_TERMINAL for j in jobs), [(j.id, j.state) for j in jobs]
        succeeded = {j.id for j in jobs if j.state == "succeeded"}
        per_job = s.execute(select(Result.job_id, func.count()).join(Job).where(Job.run_id == run_id)
                            .group_by(Result.job_id)).all()
        assert {job_id for job_id, _ in per_job} == succeeded and all(n == 1 for _, n in per_job)
        # every result comes from the attempt that won: never from a fenced-off one, and
        # under the lease token that attempt held
        by_id = {a.id: a for a in attempts}
        for r in results:
            a = by_id[r.attempt_id]
            assert a.state == "succeeded", (r.attempt_id, a.state)
            assert r.document["attempt_token"] == a.lease_token and r.device_id == a.device_id
        assert not [a for a in attempts if a.state in ("running", "dispatched")]
    # no device left leased
    assert not [d for d in fleet.devices() if d.get("state") in ("leased", "busy")]
    assert fleet.r.zcard("bf:leases") == 0
    lost = len(jobs) - len(succeeded) if expect_succeeded else 0
    return Outcome(len(jobs), len(results), len(results) - len({r.job_id for r in results}), lost,
                   [(a.state, a.error_category, a.device_id) for a in attempts])


def wait_finalized(run_id: str, procs: Procs, timeout: float = 60) -> float:
    """Wait for the run; returns when it was finalised (monotonic)."""
    try:
        wait_until(lambda: finalized(run_id), timeout, "the run to be finalised")
    except AssertionError as exc:
        logs = "\n".join(f"--- {n}\n{procs.log(n)[-2500:]}" for n, _ in procs.procs)
        raise AssertionError(f"{exc}\n{work_state(run_id)}\n{logs}") from None
    return time.monotonic()


def work_state(run_id: str) -> str:
    """Every job of the run with its attempts (state, category, device): what was left open."""
    lines = []
    with session() as s:
        for job in s.scalars(select(Job).where(Job.run_id == run_id)):
            attempts = s.scalars(select(Attempt).where(Attempt.job_id == job.id).order_by(Attempt.number)).all()
            lines.append(f"job {job.id} {job.state}: " + ", ".join(
                f"{a.id} {a.state}/{a.error_category or '-'} on {a.device_id or '-'} dispatched {a.dispatched_at}"
                for a in attempts))
    return "--- jobs\n" + "\n".join(lines)

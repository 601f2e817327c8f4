"""An agent with the iOS driver against virtual iPhones (pymobiledevice3 over real sockets):
hot-plug, corrupt results retried on another device, quarantine, thermal cool-down."""

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.virtual.testing import running_fleet
from device_inventory.fleet import Fleet
from orchestrator.coordinator.submit import submit as submit_run
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result, Run
from tests.conftest import wait_until

FLEET = """\
version: 1
seed: 3
defaults: {{tls: false, time_compression: 200, min_run_s: 0.1}}
hosts:
  - name: vh
    devices:
      - {{product_type: "iPhone14,5", ios: "16.6", count: {count}}}
"""
SPEC = """\
name: ios
models: [tiny_cnn]
backends: [xnnpack]
devices: [A15]
parameters: {input_resolution: [64], warmup: 1, iterations: 20, repeats: 1, timeout_s: 20}
"""


@pytest.fixture
def fleet_of(tmp_path):
    def make(count):
        path = tmp_path / f"fleet{count}.yaml"
        path.write_text(FLEET.format(count=count))
        return running_fleet(path)
    return make


def a15_devices(fleet, state=None):
    return [d for d in fleet.devices() if d.get("device_class") == "A15" and (state is None or d.get("state") == state)]


def start(procs, bf_env, vfleet, **env):
    procs.env = dict(bf_env, HOME=str(Path(bf_env["BENCHFARM_HOME"])), **env)
    procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "3")
    procs.start("agent", "agent", "--driver", "ios", "--usbmux", vfleet.usbmux_address, "--name", "ios",
                "--lease-ttl", "10")


def submit(fleet):
    run_id, outbox = submit_run(loads_spec(SPEC), SPEC, fleet)
    outbox.send()
    return run_id


def finalized(run_id):
    with session() as s:
        return s.get(Run, run_id).finalized


def test_hot_plug_and_a_corrupt_result_retried_on_another_device(bf_env, procs, fleet_of):
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    with fleet_of(2) as vfleet:
        start(procs, bf_env, vfleet)
        wait_until(lambda: len(a15_devices(fleet, "available")) == 2, 60, "two virtual A15s to register")
        udid = vfleet.udids[0]
        vfleet.unplug(udid)
        wait_until(lambda: len(a15_devices(fleet, "offline")) == 1, 20, "the unplugged device to go offline")
        vfleet.plug(udid)
        wait_until(lambda: len(a15_devices(fleet, "available")) == 2, 20, "the re-plugged device to return")

        for u in vfleet.udids:
            vfleet.inject_fault(u, "corrupt_result", count=1, mode="schema")
        run_id = submit(fleet)
        wait_until(lambda: finalized(run_id), 240, "the run to finish")
        with session() as s:
            job = s.scalars(select(Job).where(Job.run_id == run_id)).one()
            attempts = s.scalars(select(Attempt).where(Attempt.job_id == job.id).order_by(Attempt.number)).all()
            assert job.state == "succeeded", (job.reason, [(a.state, a.error) for a in attempts], procs.log("agent"))
            failed = [a for a in attempts if a.state == "infra_failed"]
            assert len(failed) == 2 and all(a.error_category == "bad_result" for a in failed)
            assert failed[0].device_id != failed[1].device_id  # the retry went to the other device
            assert "result document invalid" in failed[0].error
            [result] = s.scalars(select(Result).where(Result.job_id == job.id)).all()
            assert result.simulated and result.device_model == "iPhone14,5" and result.os_version == "16.6"
            steps = {st["step"] for st in attempts[-1].timeline}
            assert {"health", "prepare", "run", "validate"} <= steps


def test_consecutive_crashes_quarantine_the_device_until_released(bf_env, procs, fleet_of):
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    with fleet_of(1) as vfleet:
        start(procs, bf_env, vfleet)
        wait_until(lambda: len(a15_devices(fleet, "available")) == 1, 60, "the virtual A15")
        vfleet.inject_fault(vfleet.udids[0], "harness_crash", count=3)
        run_id = submit(fleet)
        wait_until(lambda: finalized(run_id), 240, "the run to give up")
        with session() as s:
            job = s.scalars(select(Job).where(Job.run_id == run_id)).one()
            assert job.state == "failed" and "after 3 attempts (harness_crashed)" in job.reason
        [dev] = a15_devices(fleet)
        assert dev["state"] == "quarantined"
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "devices", "--json"], env=procs.env,
                             capture_output=True, text=True, timeout=60)
        assert '"quarantined"' in out.stdout
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "devices", "release", dev["id"]],
                             env=procs.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0
        run2 = submit(fleet)  # released: the device takes work again
        wait_until(lambda: finalized(run2), 120, "a run on the released device")
        with session() as s:
            assert s.get(Run, run2).status == "succeeded"


def test_a_hot_device_cools_down_before_it_runs(bf_env, procs, fleet_of):
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    with fleet_of(1) as vfleet:
        start(procs, bf_env, vfleet, BENCHFARM_COOL_DOWN_POLL_S="1", BENCHFARM_COOL_DOWN_MAX_S="30")
        wait_until(lambda: len(a15_devices(fleet, "available")) == 1, 60, "the virtual A15")
        # long enough to outlast submit -> dispatch -> lease on a loaded machine (4 s raced it)
        vfleet.inject_fault(vfleet.udids[0], "thermal", duration_s=10, state="serious")
        run_id = submit(fleet)
        wait_until(lambda: finalized(run_id), 120, "the run")
        with session() as s:
            [attempt] = s.scalars(select(Attempt)).all()
            assert attempt.state == "succeeded"
            cool = [st for st in attempt.timeline if st["step"] == "cool_down"]
            assert cool and cool[0]["thermal"] in ("serious", "critical")


def test_the_run_rule_cools_a_warm_device_between_cells_for_at_most_its_bound(bf_env, procs, fleet_of):
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    text = SPEC.replace("timeout_s: 20}",
                        "timeout_s: 20,\n  run_rules: {manual: {cool_down_to: nominal, cool_down_max_s: 3}}}")
    with fleet_of(1) as vfleet:
        start(procs, bf_env, vfleet, BENCHFARM_COOL_DOWN_POLL_S="1")
        wait_until(lambda: len(a15_devices(fleet, "available")) == 1, 60, "the virtual A15")
        # stuck at "fair": the health gate lets it run, the rule (cool to nominal) makes it wait,
        # and after cool_down_max_s it runs anyway (a job no device can cool for is not bounced forever)
        vfleet.inject_fault(vfleet.udids[0], "thermal", state="fair")
        run_id, outbox = submit_run(loads_spec(text), text, fleet)
        outbox.send()
        wait_until(lambda: finalized(run_id), 120, "the run")
        with session() as s:
            [attempt] = s.scalars(select(Attempt)).all()
            assert attempt.state == "succeeded"
            cool = [st for st in attempt.timeline if st["step"] == "cool_down"]
            assert 1 <= len(cool) <= 3 and {(st["thermal"], st["rule"]) for st in cool} == {("fair", "nominal")}
            assert s.scalars(select(Result)).one().document["thermal_before"] == "fair"

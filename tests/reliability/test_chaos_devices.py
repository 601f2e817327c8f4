"""Chaos on the devices (virtual iPhones behind a real agent, worker, Redis and DB):
unplugged mid-run and re-plugged; the harness crashing, hanging or writing a corrupt
result; a device too hot or too low on battery. Every scenario ends with the invariants
of tests.reliability.chaos.check_invariants and prints its figure line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from device_inventory.fleet import Fleet
from tests.conftest import Procs, wait_until
from tests.reliability import chaos

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]


def test_device_unplugged_mid_run_and_replugged(rel_env: dict[str, str], rel_procs: Procs, tmp_path: Path) -> None:
    fleet = Fleet.from_url(rel_env["REDIS_URL"])
    with chaos.virtual_fleet(tmp_path, count=2) as vfleet:
        chaos.start_stack(rel_procs, vfleet)
        chaos.wait_devices(fleet, 2)
        run_id = chaos.submit(fleet, chaos.spec("unplug", repeats=4))
        attempt = wait_until(lambda: chaos.running_attempt(run_id), 60, "a benchmark to start")
        vfleet.unplug(attempt.device_id)
        t_fault = time.monotonic()
        wait_until(lambda: len(chaos.a15(fleet, "offline")) == 1, 20, "the unplugged device to go offline")
        time.sleep(2)
        vfleet.plug(attempt.device_id)
        done = chaos.wait_finalized(run_id, rel_procs, 90)
        out = chaos.check_invariants(run_id, fleet)
        assert out.lost == 0 and out.results == 4
        # the attempt on the unplugged device did not count: it failed or was fenced, and was retried
        mine = [a for a in out.attempts if a[2] == attempt.device_id]
        assert any(state in ("infra_failed", "fenced") for state, _, _ in mine), out.attempts
        wait_until(lambda: len(chaos.a15(fleet, "available")) == 2, 30, "the re-plugged device to be available")
    print("\n" + out.line("device unplugged+replugged", done - t_fault))


@pytest.mark.parametrize("fault,params,category", [
    ("harness_crash", {}, "harness_crashed"),
    ("hang", {}, "timeout"),
    ("corrupt_result", {"mode": "garbage"}, "bad_result"),
    # the app on one phone links ExecuTorch 1.0.0, the program was exported by 1.5.1: refused
    ("stale_harness", {"runtime": "1.0.0"}, "runtime_mismatch"),
], ids=["crash", "hang", "corrupt", "stale-runtime"])
def test_harness_faults_are_retried_on_the_other_device(rel_env: dict[str, str], rel_procs: Procs, tmp_path: Path,
                                                       fault: str, params: dict[str, str], category: str) -> None:
    fleet = Fleet.from_url(rel_env["REDIS_URL"])
    with chaos.virtual_fleet(tmp_path, count=2, min_run_s=0.5) as vfleet:
        chaos.start_stack(rel_procs, vfleet)
        chaos.wait_devices(fleet, 2)
        bad = vfleet.udids[0]
        vfleet.inject_fault(bad, fault, count=1, **params)
        t_fault = time.monotonic()
        run_id = chaos.submit(fleet, chaos.spec(fault, repeats=3, timeout_s=4))
        done = chaos.wait_finalized(run_id, rel_procs, 90)
        out = chaos.check_invariants(run_id, fleet)
    failed = [a for a in out.attempts if a[0] == "infra_failed"]
    assert out.lost == 0 and out.results == 3
    assert [(c, d) for _, c, d in failed] == [(category, bad)], out.attempts
    print("\n" + out.line(f"harness {fault}", done - t_fault))


@pytest.mark.parametrize("fault,params", [("thermal", {"state": "critical"}), ("low_battery", {"level": 5})],
                         ids=["overheating", "battery-low"])
def test_an_unhealthy_device_is_gated_not_run(rel_env: dict[str, str], rel_procs: Procs, tmp_path: Path,
                                             fault: str, params: dict[str, object]) -> None:
    fleet = Fleet.from_url(rel_env["REDIS_URL"])
    with chaos.virtual_fleet(tmp_path, count=1, min_run_s=0.3) as vfleet:
        chaos.start_stack(rel_procs, vfleet)
        chaos.wait_devices(fleet, 1)
        udid = vfleet.udids[0]
        vfleet.inject_fault(udid, fault, duration_s=8, **params)
        t_fault = time.monotonic()
        run_id = chaos.submit(fleet, chaos.spec(fault, repeats=1))
        wait_until(lambda: "gated" in rel_procs.log("agent"), 30, "the device to refuse the job")
        # while the fault lasts the job is never run: no lease is taken, no attempt starts
        assert chaos.running_attempt(run_id) is None and fleet.r.zcard("bf:leases") == 0
        done = chaos.wait_finalized(run_id, rel_procs, 90)
        out = chaos.check_invariants(run_id, fleet)
    assert out.lost == 0 and out.results == 1 and done - t_fault >= 7  # ran only once the fault cleared
    print("\n" + out.line(f"device {fault}", done - t_fault))

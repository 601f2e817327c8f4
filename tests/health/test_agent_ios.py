"""Health checks end to end: a real coordinator worker, a real agent with the iOS driver and
virtual iPhones over real sockets (pymobiledevice3), faults injected in the virtual harness."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.virtual.testing import FleetHandle, running_fleet
from device_inventory.fleet import EVENTS, Fleet
from orchestrator.coordinator.submit import submit
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Job, Run
from tests.conftest import Procs, wait_until

FLEET = """\
version: 1
seed: 5
defaults: {tls: false, time_compression: 200, min_run_s: 0.1}
hosts:
  - name: vh
    devices:
      - {product_type: "iPhone14,5", ios: "16.6", count: 1}
"""
SPEC = """\
name: health
models: [tiny_cnn]
backends: [xnnpack]
devices: [A15]
parameters: {input_resolution: [64], warmup: 1, iterations: 20, repeats: 1, timeout_s: 20}
"""


@pytest.fixture
def one_iphone(tmp_path: Path) -> Callable[[], AbstractContextManager[FleetHandle]]:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    return lambda: running_fleet(path)


def start(procs: Procs, env: dict[str, str], vfleet: FleetHandle) -> None:
    procs.env = dict(env, HOME=str(Path(env["BENCHFARM_HOME"])))
    procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "3")
    procs.start("agent", "agent", "--driver", "ios", "--usbmux", vfleet.usbmux_address, "--name", "ios",
                "--lease-ttl", "10")


def the_iphone(fleet: Fleet) -> dict[str, str]:
    found = [d for d in fleet.devices() if d.get("device_class") == "A15"]
    return found[0] if found else {}


def health_events(fleet: Fleet, device_id: str) -> list[dict[str, str]]:
    return [f for _, f in fleet.r.xrange(EVENTS) if f.get("device") == device_id and
            f.get("reason", "").startswith("health_check")]


def run_once(fleet: Fleet, timeout: float) -> Run:
    run_id, outbox = submit(loads_spec(SPEC), SPEC, fleet)
    outbox.send()

    def finished() -> bool:
        with session() as s:
            return s.get(Run, run_id).finalized
    wait_until(finished, timeout, f"run {run_id} to finish")
    with session() as s:
        run = s.get(Run, run_id)
        s.expunge(run)
        return run


def test_a_device_quarantined_by_crashes_is_released_by_a_passing_health_check(
        hc_env: dict[str, str], hc_procs: Procs, one_iphone: Callable[[], AbstractContextManager[FleetHandle]],
        ) -> None:
    fleet = Fleet.from_url(hc_env["REDIS_URL"])
    with one_iphone() as vfleet:
        start(hc_procs, hc_env, vfleet)
        wait_until(lambda: the_iphone(fleet).get("state") == "available", 60, "the virtual A15")
        vfleet.inject_fault(vfleet.udids[0], "harness_crash", count=3)  # gone after the third crash
        run = run_once(fleet, 240)
        with session() as s:
            job = s.scalars(select(Job).where(Job.run_id == run.id)).one()
            assert job.state == "failed" and "after 3 attempts (harness_crashed)" in job.reason
        device_id = the_iphone(fleet)["id"]
        quarantined_at = time.monotonic()
        # the recheck (BENCHFARM_HEALTH_RECHECK_S=2) runs on the quarantined device's health-only worker
        wait_until(lambda: the_iphone(fleet).get("state") == "available", 120,
                   f"a health check to release the device\n{hc_procs.log('agent')[-3000:]}")
        print(f"quarantine -> released by health check: {time.monotonic() - quarantined_at:.1f} s")
        dev = the_iphone(fleet)
        assert dev["state_reason"] == "health_check passed" and dev["health_check"] == "passed"
        assert "simulated" in dev["health_check_detail"] or dev["health_check_detail"] == "golden benchmark ok"
        assert fleet.r.get(f"bf:failures:{device_id}") is None
        [passed] = [e for e in health_events(fleet, device_id) if e["state"] == "available"]
        assert passed["reason"] == "health_check passed"
        record_ids = [k.split(":", 2)[2] for k in fleet.r.scan_iter("bf:health-check:*")]
        [record] = [fleet.health_check(c) for c in record_ids]
        assert record["trigger"] == "recheck" and record["transition"] == "released"
        assert record["simulated"] == "True" and record["output_check"].startswith("skipped: simulated")
        print(f"virtual-device health check: {float(record['duration_s']):.1f} s")
        # back in service: its worker consumes the class queue again
        assert run_once(fleet, 120).status == "succeeded"


def test_a_health_check_on_a_faulty_device_fails_and_quarantines_it(
        hc_env: dict[str, str], hc_procs: Procs, one_iphone: Callable[[], AbstractContextManager[FleetHandle]],
        ) -> None:
    fleet = Fleet.from_url(hc_env["REDIS_URL"])
    with one_iphone() as vfleet:
        start(hc_procs, hc_env, vfleet)
        wait_until(lambda: the_iphone(fleet).get("state") == "available", 60, "the virtual A15")
        device_id = the_iphone(fleet)["id"]
        vfleet.inject_fault(vfleet.udids[0], "harness_crash", count=1)
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "devices", "check", device_id, "--wait",
                              "--timeout", "180"], env=hc_procs.env, capture_output=True, text=True, timeout=240)
        print(f"`devices check --wait` on a faulty virtual device: {time.monotonic() - started:.1f} s\n{out.stdout}")
        assert out.returncode == 1, out.stdout + out.stderr
        assert "failed" in out.stdout and "quarantined" in out.stdout
        quarantine = [e for e in health_events(fleet, device_id) if e["state"] == "quarantined"]
        assert quarantine and "harness_crashed" in quarantine[0]["reason"]
        # the fault was one crash: the automatic recheck passes and releases the device
        wait_until(lambda: the_iphone(fleet).get("state") == "available", 120,
                   f"the recheck to release the device\n{hc_procs.log('agent')[-3000:]}")
        assert the_iphone(fleet)["state_reason"] == "health_check passed"


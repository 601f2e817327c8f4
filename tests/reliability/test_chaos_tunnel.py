"""Chaos on the iOS 17.4+ developer path: virtual iPhones on iOS 18.6.2 behind a real agent (one
worker process and one userspace CoreDeviceProxy tunnel per device), worker, Redis and DB.

Four faults, one stack (starting it is most of the cost), one run per fault: the tunnel cut
mid-benchmark, CoreDeviceProxy refused once, RSD answering the handshake slowly,
and a device rebooting mid-benchmark and coming back on a new tunnel address. Each run ends with
the invariants of tests.reliability.chaos.check_invariants and prints its figure line.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job
from tests.conftest import Procs, wait_until
from tests.reliability import chaos

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]
RSD_DELAY_S = 3.0


def tunnel_steps(run_id: str) -> list[tuple[str, dict]]:
    """(device, tunnel step) of every attempt of the run, in attempt order."""
    with session() as s:
        attempts = s.scalars(select(Attempt).join(Job).where(Job.run_id == run_id).order_by(Attempt.number)).all()
        return [(a.device_id, st) for a in attempts for st in (a.timeline or []) if st.get("step") == "tunnel"]


def no_failures_behind(fleet: Fleet, udids: list[str]) -> None:
    """Each fault's run starts from devices with no infrastructure failures behind them: three in
    a row quarantine a device (agents.runner), and one that inherited two from the earlier runs
    would sit out the reboot's run in quarantine (seen once in a full suite)."""
    for udid in udids:
        fleet.health.record_outcome(udid, False, 3)  # what a passing job does to the count


def test_modern_path_faults(rel_env: dict[str, str], rel_procs: Procs, tmp_path: Path) -> None:
    fleet = Fleet.from_url(rel_env["REDIS_URL"])
    lines = []
    with chaos.virtual_fleet(tmp_path, count=2, min_run_s=1.5, ios="18.6.2") as vfleet:
        chaos.start_stack(rel_procs, vfleet)
        chaos.wait_devices(fleet, 2)
        bad = vfleet.udids[0]

        # 1. the tunnel cut mid-benchmark: the attempt fails (launch_failed), is retried (first: the
        #    model's export happens here, before the fault)
        run_id = chaos.submit(fleet, chaos.spec("tunnel-drop", repeats=1, timeout_s=10))
        attempt = wait_until(lambda: chaos.running_attempt(run_id), 240, "the export and a benchmark to start")
        wait_until(lambda: vfleet.device(attempt.device_id)["processes"], 30, "the harness to run")
        vfleet.inject_fault(attempt.device_id, "tunnel_drop")
        t_fault = time.monotonic()
        done = chaos.wait_finalized(run_id, rel_procs, 120)
        out = chaos.check_invariants(run_id, fleet)
        assert out.lost == 0 and out.results == 1, out.attempts
        assert ("infra_failed", "launch_failed", attempt.device_id) in out.attempts, out.attempts
        lines.append(out.line("tunnel dropped mid-benchmark", done - t_fault))

        no_failures_behind(fleet, vfleet.udids)
        # 2. CoreDeviceProxy refused (a locked device): launch_failed, retried, nothing lost
        vfleet.inject_fault(bad, "core_device_proxy_refused", count=1)
        vfleet.inject_fault(bad, "tunnel_drop")  # its agent must open a new tunnel, and meets the refusal
        t_fault = time.monotonic()
        run_id = chaos.submit(fleet, chaos.spec("proxy-refused", repeats=2, timeout_s=10))
        done = chaos.wait_finalized(run_id, rel_procs, 120)
        out = chaos.check_invariants(run_id, fleet)
        failed = [(c, d) for st, c, d in out.attempts if st == "infra_failed"]
        assert out.lost == 0 and out.results == 2 and failed == [("launch_failed", bad)], out.attempts
        lines.append(out.line("CoreDeviceProxy refused", done - t_fault))

        no_failures_behind(fleet, vfleet.udids)
        # 3. RSD slow to answer: the tunnel set-up waits, the attempt succeeds, nothing retried
        for udid in vfleet.udids:
            vfleet.inject_fault(udid, "rsd_slow", count=1, delay_s=RSD_DELAY_S)
            vfleet.inject_fault(udid, "tunnel_drop")  # so the next job builds a new tunnel (and meets RSD)
        t_fault = time.monotonic()
        run_id = chaos.submit(fleet, chaos.spec("rsd-slow", repeats=1, timeout_s=10))
        done = chaos.wait_finalized(run_id, rel_procs, 120)
        out = chaos.check_invariants(run_id, fleet)
        assert out.lost == 0 and out.results == 1 and [a[0] for a in out.attempts] == ["succeeded"], out.attempts
        built = [st for _, st in tunnel_steps(run_id) if not st["reused"]]
        assert built and built[0]["duration_s"] >= RSD_DELAY_S  # the wait is on the attempt's timeline
        lines.append(out.line(f"RSD answering after {RSD_DELAY_S:.0f}s", done - t_fault))

        no_failures_behind(fleet, vfleet.udids)
        # 4. a reboot mid-benchmark: device lost, retried; the device comes back on a new address
        run_id = chaos.submit(fleet, chaos.spec("reboot", repeats=1, timeout_s=10))
        attempt = wait_until(lambda: chaos.running_attempt(run_id), 60, "a benchmark to start")
        wait_until(lambda: vfleet.device(attempt.device_id)["processes"], 30, "the harness to run")
        old_address = vfleet.call(lambda s: s.device(attempt.device_id).tunnel_addresses()[0])
        vfleet.inject_fault(attempt.device_id, "reboot", duration_s=1.5)
        t_fault = time.monotonic()
        done = chaos.wait_finalized(run_id, rel_procs, 150)
        out = chaos.check_invariants(run_id, fleet)
        assert out.lost == 0 and out.results == 1, out.attempts
        assert [a for a in out.attempts if a[2] == attempt.device_id and a[0] != "succeeded"], out.attempts
        new_address = vfleet.call(lambda s: s.device(attempt.device_id).tunnel_addresses()[0])
        assert new_address != old_address
        wait_until(lambda: len(chaos.a15(fleet, "available")) == 2, 60, "the rebooted device to be available")
        # a job on the rebooted device afterwards goes through a tunnel to its new address
        run_id = chaos.submit(fleet, chaos.spec("after-reboot", repeats=3, timeout_s=10))
        chaos.wait_finalized(run_id, rel_procs, 120)
        assert chaos.check_invariants(run_id, fleet).lost == 0
        addresses = {st["address"] for d, st in tunnel_steps(run_id) if d == attempt.device_id}
        assert addresses <= {new_address}, (addresses, old_address, new_address)
        lines.append(out.line("reboot with a new tunnel address", done - t_fault))
    print("\n" + "\n".join(lines))

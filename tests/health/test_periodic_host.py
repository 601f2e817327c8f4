"""The coordinator's housekeeping sends the periodic golden check: a real coordinator worker
and a real agent with the host driver (ExecuTorch on this CPU), checked every few seconds."""

from __future__ import annotations

from device_inventory.fleet import Fleet
from tests.conftest import Procs, wait_until


def test_the_coordinator_health_checks_a_device_periodically(hc_env: dict[str, str], hc_procs: Procs) -> None:
    fleet = Fleet.from_url(hc_env["REDIS_URL"])
    hc_procs.env = dict(hc_env, BENCHFARM_HEALTH_CHECK_EVERY_S="4")
    hc_procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
    hc_procs.start("agent", "agent", "--driver", "host", "--name", "periodic", "--lease-ttl", "10")

    def checked() -> list[dict[str, str]]:
        records = [fleet.health_check(k.split(":", 2)[2]) for k in fleet.r.scan_iter("bf:health-check:*")]
        return [r for r in records if r.get("verdict") == "passed"]

    [record, *_] = wait_until(checked, 180, f"a periodic check\n{hc_procs.log('worker')[-2000:]}")
    assert record["trigger"] == "periodic" and record["backend"] == "xnnpack"
    assert record["simulated"] == "False" and record["output_check"].startswith("matched")
    [dev] = fleet.devices()
    assert dev["state"] in ("available", "leased") and dev["health_check"] == "passed"

"""Chaos on the coordinator side: Redis restarted mid-run (a private redis-server), and
two coordinator workers at once. Virtual iPhones, real worker/agent processes and DB."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_inventory.fleet import Fleet
from tests.conftest import Procs, point_broker_at, reset_broker_pool, wait_until
from tests.reliability import chaos
from tests.reliability.private_redis import PrivateRedis

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]


@pytest.fixture
def own_redis(rel_env: dict[str, str], rel_procs: Procs, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateRedis]:
    """Point this test and its subprocesses at a private redis-server."""
    server = PrivateRedis(tmp_path / "redis").start()
    monkeypatch.setenv("REDIS_URL", server.url)
    point_broker_at(server.url, monkeypatch)
    rel_procs.env = dict(rel_procs.env, REDIS_URL=server.url)
    yield server
    rel_procs.stop_all()  # before Redis goes, so the processes shut down cleanly
    reset_broker_pool()
    server.stop()


def test_redis_restarted_mid_run(own_redis: PrivateRedis, rel_procs: Procs, tmp_path: Path) -> None:
    fleet = Fleet.from_url(own_redis.url)
    with chaos.virtual_fleet(tmp_path, count=2) as vfleet:
        # a delivery a consumer held when the connection dropped stays "unacked" in the broker:
        # the reconciler re-publishes it (production bound: BENCHFARM_RECONCILE_AFTER_S, 5 min);
        # here its test settings, so the run recovers inside the wait below (seen once in a
        # loaded full suite: the run not finalised after 90 s with the defaults)
        chaos.start_stack(rel_procs, vfleet, BENCHFARM_RECONCILE_EVERY_S="1", BENCHFARM_RECONCILE_AFTER_S="4",
                          BENCHFARM_OUTBOX_GRACE_S="2")
        chaos.wait_devices(fleet, 2)
        run_id = chaos.submit(fleet, chaos.spec("redis-restart", repeats=4))
        wait_until(lambda: chaos.running_attempt(run_id), 60, "a benchmark to start")
        own_redis.stop()
        t_fault = time.monotonic()
        time.sleep(3)
        own_redis.start()
        time.sleep(2)  # the agent loop polls Redis every second: by now it has seen the outage
        for name, proc in rel_procs.procs:  # nobody died of the outage
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{rel_procs.log(name)[-1500:]}"
        done = chaos.wait_finalized(run_id, rel_procs, 90)
        out = chaos.check_invariants(run_id, fleet)
        assert out.lost == 0 and out.results == 4
    print("\n" + out.line("redis restarted", done - t_fault))


def test_two_coordinator_workers_at_once(rel_env: dict[str, str], rel_procs: Procs, tmp_path: Path) -> None:
    fleet = Fleet.from_url(rel_env["REDIS_URL"])
    with chaos.virtual_fleet(tmp_path, count=2, min_run_s=0.5) as vfleet:
        # both workers' task lines are read below (they are off by default)
        chaos.start_stack(rel_procs, vfleet, workers=2, BENCHFARM_TASK_LOG_LEVEL="INFO")
        chaos.wait_devices(fleet, 2)
        for udid in vfleet.udids:  # retries and reports race between the two coordinators
            vfleet.inject_fault(udid, "harness_crash", count=1)
        t0 = time.monotonic()
        run_id = chaos.submit(fleet, chaos.spec("two-coordinators", repeats=6))
        done = chaos.wait_finalized(run_id, rel_procs, 90)
        out = chaos.check_invariants(run_id, fleet)
    assert out.lost == 0 and out.results == 6
    assert sum(1 for a in out.attempts if a[0] == "infra_failed") == 2
    logs = [rel_procs.log("worker0"), rel_procs.log("worker1")]
    assert all("benchfarm.record_attempt[" in log for log in logs), "both coordinators recorded reports"
    print("\n" + out.line("two coordinators", done - t0))

"""Chaos scenario 6: a network partition of an agent host. One agent runs in its own
network namespace, reaching a private redis-server over a veth pair; mid-benchmark the
link is cut (``ip link set down``) for longer than the lease TTL, then restored. The
coordinator must reap the lease and retry the job on the other agent; the partitioned
agent must survive, its late report must be fenced off, and its device must come back.
Real processes, Redis and database; the host driver (the virtual iOS fleet's usbmuxd
listens on 127.0.0.1 of the root namespace, which the partitioned agent cannot reach)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result
from tests.conftest import Procs, point_broker_at, reset_broker_pool, wait_until
from tests.reliability import chaos
from tests.reliability.private_redis import PrivateRedis

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]
# longer than the lease TTL (3 s) plus the reaper's period (5 s): the lease is surely reaped
OUTAGE_S = 8.0
JOBS = 4


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


@dataclass
class Partition:
    """A network namespace joined to the root one by a veth pair on a private /30."""

    ns: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    def exec_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.ns)

    def cut(self) -> None:
        # the root side down: the namespace's side loses carrier and every packet is dropped,
        # with no RST to tell either end; TCP connections just stall
        _ip("link", "set", self.host_if, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_if, "up")
        _ip("netns", "exec", self.ns, "ip", "link", "set", self.ns_if, "up")


@pytest.fixture
def partition() -> Iterator[Partition]:
    if os.geteuid() != 0:
        pytest.skip("the network-partition scenario needs root (network namespaces, veth)")
    if shutil.which("ip") is None:
        pytest.skip("the network-partition scenario needs iproute2 (`ip`)")
    pid = os.getpid()
    # a /30 in 10.213.0.0/16 and interface names (<= 15 chars) derived from the pid:
    # concurrent runs of this scenario on one machine do not clash
    index = pid % 16384
    base = f"10.213.{index // 64}.{(index % 64) * 4}".rsplit(".", 1)
    p = Partition(ns=f"bfpart{pid}", host_if=f"bfh{pid}", ns_if=f"bfn{pid}",
                  host_ip=f"{base[0]}.{int(base[1]) + 1}", ns_ip=f"{base[0]}.{int(base[1]) + 2}")
    made = _ip("netns", "add", p.ns, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace (CAP_NET_ADMIN?): {made.stderr.strip()}")
    try:
        _ip("link", "add", p.host_if, "type", "veth", "peer", "name", p.ns_if)
        _ip("link", "set", p.ns_if, "netns", p.ns)
        _ip("addr", "add", f"{p.host_ip}/30", "dev", p.host_if)
        _ip("link", "set", p.host_if, "up")
        for cmd in (("addr", "add", f"{p.ns_ip}/30", "dev", p.ns_if), ("link", "set", p.ns_if, "up"),
                    ("link", "set", "lo", "up")):
            _ip("netns", "exec", p.ns, "ip", *cmd)
        yield p
    finally:
        _ip("netns", "del", p.ns, check=False)  # takes its end of the veth pair, and so the pair, with it
        _ip("link", "del", p.host_if, check=False)  # in case the pair outlived the namespace


@pytest.fixture
def partitioned_redis(partition: Partition, rel_env: dict[str, str], rel_procs: Procs, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateRedis]:
    """A private redis-server on 127.0.0.1 and the root end of the veth pair; this test and
    its root-namespace subprocesses use 127.0.0.1, the partitioned agent the veth address."""
    server = PrivateRedis(tmp_path / "redis", bind=("127.0.0.1", partition.host_ip)).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    point_broker_at(server.url, monkeypatch)
    rel_procs.env = dict(rel_procs.env, REDIS_URL=server.url)
    yield server
    rel_procs.stop_all()  # before Redis and the namespace go, so the processes shut down cleanly
    reset_broker_pool()
    server.stop()


def host_spec(name: str, iterations: int) -> str:
    return (f"name: {name}\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n"
            f"parameters: {{input_resolution: [64], warmup: 1, iterations: {iterations}, repeats: {JOBS}, "
            f"timeout_s: 120}}\n")


def attempt_on(run_id: str, device_id: str) -> Attempt | None:
    with session() as s:
        return s.scalars(select(Attempt).join(Job).where(Job.run_id == run_id, Attempt.state == "running",
                                                         Attempt.device_id == device_id)).first()


def attempt_state(attempt_id: str) -> str:
    with session() as s:
        return s.get(Attempt, attempt_id).state


def device_state(fleet: Fleet, device_id: str) -> str | None:
    return next((d.get("state") for d in fleet.devices() if d.get("id") == device_id), None)


def test_agent_host_partitioned_mid_benchmark(partition: Partition, partitioned_redis: PrivateRedis,
                                              rel_procs: Procs, tmp_path: Path) -> None:
    fleet = Fleet.from_url(partitioned_redis.url)
    ns_url = partitioned_redis.url_for(partition.host_ip)
    probe = subprocess.run([*partition.exec_prefix(), "redis-cli", "-u", ns_url, "ping"], capture_output=True,
                           text=True, timeout=10) if shutil.which("redis-cli") else None
    assert probe is None or probe.stdout.strip() == "PONG", f"Redis not reachable from {partition.ns}: {probe}"
    rel_procs.env = dict(rel_procs.env, BENCHFARM_COOL_DOWN_POLL_S="1", BENCHFARM_COOL_DOWN_MAX_S="4")
    rel_procs.start("worker0", "worker", "--queues", "coordinator,export.linux", "--concurrency", "3",
                    "--hostname", "coordinator0@partition")
    root_env = rel_procs.env
    rel_procs.env = dict(root_env, REDIS_URL=ns_url)  # the partitioned agent's only way to Redis
    cut_off = rel_procs.start("cut-off", "agent", "--driver", "host", "--name", "cut-off", "--lease-ttl",
                              chaos.LEASE_TTL, prefix=partition.exec_prefix())
    rel_procs.env = root_env
    rel_procs.start("steady", "agent", "--driver", "host", "--name", "steady", "--lease-ttl", chaos.LEASE_TTL)
    wait_until(lambda: len([d for d in fleet.devices() if d.get("device_class") == "host-cpu"
                            and d.get("state") == "available"]) >= 2, 60, "both agents' host devices")
    cut_dev = next(d["id"] for d in fleet.devices() if d.get("agent") == "cut-off")

    run_id = chaos.submit(fleet, host_spec("partition", iterations=5000))
    attempt = wait_until(lambda: attempt_on(run_id, cut_dev), 90, "a benchmark on the partitioned agent")
    partition.cut()
    t_fault = time.monotonic()
    try:
        # the partitioned agent's heartbeats stop reaching Redis: its lease is reaped and
        # the attempt fenced while the link is still down
        wait_until(lambda: attempt_state(attempt.id) == "fenced", 20, "the partitioned attempt to be fenced")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_fault)))
        assert cut_off.poll() is None, f"the partitioned agent died:\n{rel_procs.log('cut-off')[-2500:]}"
    finally:
        partition.restore()
    t_restored = time.monotonic()
    done = chaos.wait_finalized(run_id, rel_procs, 90)
    # after the restore the late report arrives and is refused: the attempt stays fenced
    wait_until(lambda: f"rejected report for attempt {attempt.id}" in rel_procs.log("worker0"), 60,
               "the partitioned agent's late report to be rejected")
    out = chaos.check_invariants(run_id, fleet)
    assert out.lost == 0 and out.results == out.jobs == JOBS and out.duplicates == 0
    assert ("fenced", attempt.device_id) in [(state, dev) for state, _, dev in out.attempts], out.attempts
    assert attempt_state(attempt.id) == "fenced"
    # the partitioned agent rode out the outage and its device is back in the fleet
    wait_until(lambda: device_state(fleet, cut_dev) == "available", 30, "the partitioned device to be available")
    for name, proc in rel_procs.procs:
        assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{rel_procs.log(name)[-2500:]}"
    # and its device worker consumes work again (its broker connection did not stay wedged):
    # with the other device in maintenance, a new job can only run on the partitioned one
    steady_dev = next(d["id"] for d in fleet.devices() if d.get("agent") == "steady")
    fleet.set_state(steady_dev, "maintenance", "partition scenario: leave the work to the partitioned agent")
    after = chaos.submit(fleet, host_spec("after-partition", iterations=200).replace(f"repeats: {JOBS}", "repeats: 1"))
    chaos.wait_finalized(after, rel_procs, 45)
    with session() as s:
        assert [r.device_id for r in s.scalars(select(Result).join(Job).where(Job.run_id == after))] == [cut_dev]
    print(f"\n(outage {t_restored - t_fault:.1f} s)\n" + out.line("network partition", done - t_fault))

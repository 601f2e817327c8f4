"""`benchfarm hosts ...` end to end through typer against real sshd hosts (and Redis for drain)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from device_inventory.fleet import LeaseRefused
from orchestrator.cli.hosts import hosts_app
from orchestrator.fleetops.ssh import Remote

from .testhosts import FAST, REDIS_URL, fresh_fleet, host_entry, write_inventory

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(hosts_app, list(args), catch_exceptions=False)


def test_check_three_hosts_one_down_in_bounded_time(ssh_env, tmp_path):
    silent = socket.socket()  # accepts TCP, never speaks SSH: the worst kind of "down"
    silent.bind(("127.0.0.22", 0))
    silent.listen(8)
    try:
        h = ssh_env["hosts"]
        entries = [host_entry("up-0", h[0], ssh_env["key"], tmp_path / "b0"),
                   host_entry("up-1", h[1], ssh_env["key"], tmp_path / "b1"),
                   host_entry("down", h[2], ssh_env["key"], tmp_path / "b2", hostname="127.0.0.22",
                              port=silent.getsockname()[1])]
        write_inventory(tmp_path / "hosts.yaml", ssh_env["known_hosts"], entries)
        t0 = time.monotonic()
        result = _invoke("check", "-i", str(tmp_path / "hosts.yaml"), "--json", "--connect-timeout", "1",
                         "--retries", "1")
        elapsed = time.monotonic() - t0
    finally:
        silent.close()
    assert result.exit_code == 1, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert [rows["up-0"]["ok"], rows["up-1"]["ok"], rows["down"]["ok"]] == [True, True, False]
    assert rows["down"]["error_kind"] == "timeout" and "no SSH banner" in rows["down"]["error"]
    for name in ("up-0", "up-1"):
        assert rows[name]["python"].startswith("3.") and rows[name]["disk_free_gb"] > 0
        assert abs(rows[name]["clock_skew_s"]) < 1.0
    # two 1 s attempts on the down host, in parallel with the healthy ones
    assert elapsed < 15, f"check took {elapsed:.1f}s"


def test_check_table_and_bad_inventory(inventory, tmp_path):
    inv_path = tmp_path / "hosts.yaml"
    result = _invoke("check", "h1", "-i", str(inv_path))
    assert result.exit_code == 0, result.output
    assert "h1" in result.stdout and "h0" not in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts:\n  - name: x\n    hostname: y\n    user: u\n"
                   "    platform: windows\n    roles: [agent]\n")
    result = _invoke("check", "-i", str(bad))
    assert result.exit_code == 2 and f"{bad}:5: hosts[0].platform" in " ".join(result.output.split())


def test_exec_streams_output_and_returns_exit_code(inventory, tmp_path):
    inv = str(tmp_path / "hosts.yaml")
    result = _invoke("exec", "h0", "-i", inv, "--", "sh", "-c", "echo hello; echo oops >&2; exit 3")
    assert result.exit_code == 3
    assert "hello" in result.stdout
    result = _invoke("exec", "h0", "-i", inv, "--", "echo a b | wc -w")
    assert result.exit_code == 0 and result.stdout.strip() == "2"
    result = _invoke("exec", "nope", "-i", inv, "--", "true")
    assert result.exit_code == 2 and "no host named 'nope'" in result.output


def test_logs_tail_and_follow(inventory, tmp_path):
    host = inventory.hosts[0]
    inv = str(tmp_path / "hosts.yaml")
    assert _invoke("logs", "h0", "-i", inv).exit_code == 1  # not bootstrapped: no log yet
    with Remote(host, inventory.known_hosts, FAST) as r:
        log = r.path("logs", "agent.log")
        r.put_bytes(b"one\ntwo\nthree\n", log)
    result = _invoke("logs", "h0", "-i", inv, "-n", "2")
    assert result.exit_code == 0 and result.stdout == "two\nthree\n"

    seen: list[bytes] = []
    stop = threading.Event()
    kh = inventory.known_hosts
    with Remote(host, kh, FAST) as follower, Remote(host, kh, FAST) as w:
        thread = threading.Thread(target=follower.stream, args=(["tail", "-n", "0", "-F", log], seen.append,
                                                                 seen.append), kwargs={"stop": stop})
        thread.start()
        deadline = time.monotonic() + 10
        while b"four" not in b"".join(seen) and time.monotonic() < deadline:
            w.run(f"echo four >> {log}")
            time.sleep(0.3)
        stop.set()
        thread.join(5)
    assert b"four" in b"".join(seen)


@pytest.fixture
def fleet():
    fleet = fresh_fleet()
    if fleet is None:
        pytest.skip(f"Redis at {REDIS_URL} does not answer")
    yield fleet
    fleet.r.flushdb()


def test_drain_and_undrain(inventory, tmp_path, fleet):
    inv = str(tmp_path / "hosts.yaml")
    # the agent bootstrap starts is named after the inventory entry; drivers may report "host"
    for dev in ("d-leased", "d-operator"):
        fleet.register(dev, {"class": "A15", "agent": "h0"}, heartbeat_ttl=60)
    fleet.register("d-idle", {"class": "A15", "host": "h0"}, heartbeat_ttl=60)
    fleet.register("d-elsewhere", {"class": "A15", "agent": "h1"}, heartbeat_ttl=60)
    fleet.set_state("d-operator", "maintenance", "battery swap")
    fleet.dispatch_attempt("att-1")
    lease = fleet.acquire("d-leased", "att-1", "job-1", ttl=60)

    result = _invoke("drain", "h0", "-i", inv, "--redis-url", REDIS_URL)
    assert result.exit_code == 0, result.output
    assert "still finishing jobs on d-leased" in result.stdout
    marker = Path(inventory.hosts[0].base_dir) / "DRAINING"
    assert marker.exists()
    assert {d: fleet.device(d)["state"] for d in ("d-leased", "d-idle", "d-operator", "d-elsewhere")} == {
        "d-leased": "maintenance", "d-idle": "maintenance", "d-operator": "maintenance",
        "d-elsewhere": "available"}
    fleet.dispatch_attempt("att-2")
    with pytest.raises(LeaseRefused):
        fleet.acquire("d-idle", "att-2", "job-2", ttl=60)
    # the running job finishes normally; its device stays out of rotation
    assert fleet.release(lease)
    assert fleet.device("d-leased")["state"] == "maintenance"

    result = _invoke("undrain", "h0", "-i", inv, "--redis-url", REDIS_URL)
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert fleet.device("d-leased")["state"] == "available" and fleet.device("d-idle")["state"] == "available"
    assert fleet.device("d-operator")["state"] == "maintenance", "an operator's maintenance is not undone"

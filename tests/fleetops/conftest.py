from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from orchestrator.fleetops.inventory import Inventory

from .testhosts import (
    SshdHost,
    free_port,
    host_entry,
    host_key_line,
    keygen,
    sshd_missing_reason,
    write_inventory,
)


@pytest.fixture(scope="session")
def ssh_env(tmp_path_factory: pytest.TempPathFactory):
    """Three running sshd hosts, a client key they accept and a known_hosts trusting them."""
    if reason := sshd_missing_reason():
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("sshd")
    client_key = keygen(root / "client_ed25519")
    authorized = root / "authorized_keys"
    authorized.write_text((root / "client_ed25519.pub").read_text())
    hosts = []
    try:
        for i in range(3):
            addr = f"127.0.0.{11 + i}"
            hosts.append(SshdHost(addr, free_port(addr), root / f"host{i}").start(authorized))
        known = root / "known_hosts"
        known.write_text("".join(host_key_line(h.addr, h.port, h.host_pub) for h in hosts))
        yield {"root": root, "key": client_key, "known_hosts": known, "hosts": hosts}
    finally:
        for h in hosts:
            h.stop()


@pytest.fixture
def inventory(ssh_env, tmp_path: Path) -> Inventory:
    entries = [host_entry(f"h{i}", h, ssh_env["key"], tmp_path / f"base{i}")
               for i, h in enumerate(ssh_env["hosts"])]
    inv = write_inventory(tmp_path / "hosts.yaml", ssh_env["known_hosts"], entries)
    yield inv
    # bootstrap may have left supervised agents running: stop the ones this test started
    for pidfile in tmp_path.glob("base*/run/agent.pid"):
        try:
            os.killpg(int(pidfile.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError, PermissionError):
            pass

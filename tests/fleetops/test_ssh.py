"""The SSH layer against real sshd hosts: commands, files, and every refusal an operator can meet."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time

import pytest

from orchestrator.fleetops.checks import probe
from orchestrator.fleetops.errors import (
    AuthFailed,
    CommandFailed,
    CommandTimeout,
    HostKeyMismatch,
    SSHTimeout,
    UnknownHostKey,
    Unreachable,
)
from orchestrator.fleetops.ssh import Remote, Timeouts

from .testhosts import FAST, free_port, host_entry, keygen, write_inventory


def test_run_put_and_hash(inventory):
    host = inventory.hosts[0]
    with Remote(host, inventory.known_hosts, FAST) as r:
        res = r.run(["sh", "-c", "echo out; echo err >&2"])
        assert (res.exit_code, res.stdout, res.stderr) == (0, "out\n", "err\n")
        target = r.path("sub", "dir", "file.txt")
        r.put_bytes(b"hello", target, 0o600)
        hashes = probe(r, [target, r.path("missing")])["hashes"]  # hashed on the host
        assert hashes[target] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        assert hashes[r.path("missing")] is None
        assert r.run(["stat", "-c", "%a", target]).stdout.strip() == "600"
        assert r.run(["cat"], stdin=b"piped").stdout == "piped"


def test_command_failure_carries_exit_code_and_stderr_tail(inventory):
    with Remote(inventory.hosts[0], inventory.known_hosts, FAST) as r:
        with pytest.raises(CommandFailed) as info:
            r.run("echo first >&2; echo 'the real error' >&2; exit 7")
        assert info.value.exit_code == 7
        assert "the real error" in info.value.stderr_tail
        assert r.run("exit 3", check=False).exit_code == 3


def test_command_timeout(inventory):
    with Remote(inventory.hosts[0], inventory.known_hosts, FAST) as r:
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout):
            r.run("sleep 30", timeout=1)
        assert time.monotonic() - t0 < 5


def test_unknown_host_key_is_refused_with_fingerprint_and_keyscan(ssh_env, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    sshd = ssh_env["hosts"][0]
    inv = write_inventory(tmp_path / "hosts.yaml", empty, [host_entry("h", sshd, ssh_env["key"], tmp_path)])
    with pytest.raises(UnknownHostKey) as info:
        Remote(inv.hosts[0], inv.known_hosts, FAST).connect()
    msg = str(info.value)
    expected_fp = _keygen_fingerprint(sshd.host_pub)
    assert expected_fp in msg
    assert f"ssh-keyscan -p {sshd.port} {sshd.addr} >> {empty}" in msg
    assert empty.read_text() == "", "nothing may be added to known_hosts automatically"


def test_changed_host_key_is_refused(ssh_env, tmp_path):
    # known_hosts claims host0's endpoint has host1's key: what a reinstalled host or a
    # man in the middle looks like.
    sshd, other = ssh_env["hosts"][0], ssh_env["hosts"][1]
    kind, b64 = other.host_pub.read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.addr}]:{sshd.port} {kind} {b64}\n")
    inv = write_inventory(tmp_path / "hosts.yaml", known, [host_entry("h", sshd, ssh_env["key"], tmp_path)])
    with pytest.raises(HostKeyMismatch) as info:
        Remote(inv.hosts[0], inv.known_hosts, FAST).connect()
    msg = str(info.value)
    assert _keygen_fingerprint(sshd.host_pub) in msg and _keygen_fingerprint(other.host_pub) in msg
    assert "ssh-keygen -R" in msg


def test_auth_failure(ssh_env, tmp_path):
    stranger = keygen(tmp_path / "stranger")
    inv = write_inventory(tmp_path / "hosts.yaml", ssh_env["known_hosts"],
                          [host_entry("h", ssh_env["hosts"][0], stranger, tmp_path)])
    t0 = time.monotonic()
    with pytest.raises(AuthFailed) as info:
        Remote(inv.hosts[0], inv.known_hosts, FAST).connect()
    assert "authentication failed" in str(info.value)
    assert time.monotonic() - t0 < 5, "auth failures must not be retried"


def test_silent_port_times_out(ssh_env, tmp_path):
    # accepts TCP, never speaks SSH
    listener = socket.socket()
    listener.bind(("127.0.0.20", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        sshd = ssh_env["hosts"][0]
        inv = write_inventory(tmp_path / "hosts.yaml", ssh_env["known_hosts"],
                              [host_entry("h", sshd, ssh_env["key"], tmp_path,
                                          hostname="127.0.0.20", port=port)])
        t0 = time.monotonic()
        with pytest.raises(SSHTimeout) as info:
            Remote(inv.hosts[0], inv.known_hosts, Timeouts(connect=1, retries=1, backoff=0.1)).connect()
        elapsed = time.monotonic() - t0
        assert "no SSH banner" in str(info.value)
        assert elapsed < 6, f"two 1 s attempts took {elapsed:.1f}s"
    finally:
        listener.close()


def test_closed_port_is_unreachable(ssh_env, tmp_path):
    port = free_port("127.0.0.21")
    inv = write_inventory(tmp_path / "hosts.yaml", ssh_env["known_hosts"],
                          [host_entry("h", ssh_env["hosts"][0], ssh_env["key"], tmp_path,
                                      hostname="127.0.0.21", port=port)])
    with pytest.raises(Unreachable):
        Remote(inv.hosts[0], inv.known_hosts, FAST).connect()


def test_stream_stops_on_event(inventory):
    chunks: list[bytes] = []
    stop = threading.Event()
    with Remote(inventory.hosts[0], inventory.known_hosts, FAST) as r:
        timer = threading.Timer(1.0, stop.set)
        timer.start()
        code = r.stream("while true; do echo tick; sleep 0.2; done", chunks.append, chunks.append, stop=stop)
    assert code == -1
    assert b"tick" in b"".join(chunks)


def test_encrypted_key_passphrase_from_env_and_never_logged(ssh_env, tmp_path, monkeypatch, caplog):
    secret = "s3cret-Passphrase-42"
    key = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", secret, "-f", str(key)], check=True,
                   timeout=30)
    authorized = ssh_env["root"] / "authorized_keys"
    authorized.write_text(authorized.read_text() + (tmp_path / "locked.pub").read_text())
    inv = write_inventory(tmp_path / "hosts.yaml", ssh_env["known_hosts"],
                          [host_entry("h", ssh_env["hosts"][0], key, tmp_path,
                                      passphrase_env="BF_TEST_PASS")])
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthFailed, match=r"encrypted; set \$BF_TEST_PASS"):
        Remote(inv.hosts[0], inv.known_hosts, FAST).connect()
    monkeypatch.setenv("BF_TEST_PASS", secret)
    with Remote(inv.hosts[0], inv.known_hosts, FAST) as r:
        assert r.run("echo ok").stdout == "ok\n"
    assert secret not in caplog.text


def _keygen_fingerprint(pub) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]

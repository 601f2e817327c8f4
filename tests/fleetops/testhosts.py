"""Real OpenSSH test hosts: one ``sshd -D -e`` per host on its own loopback address and port.

127.0.0.0/8 is all loopback, so 127.0.0.11, .12, .13 are three distinct endpoints (three
``[addr]:port`` known_hosts entries) without network namespaces. Each sshd has its own
generated host key and accepts one generated client key; sshd runs as root (it needs
to, for privilege separation) and the test logs in as the current user.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import yaml

from device_inventory.fleet import Fleet
from orchestrator.fleetops.inventory import Inventory, load_inventory
from orchestrator.fleetops.ssh import Timeouts

SSHD = "/usr/sbin/sshd"
# Short timeouts keep the failure cases (down host, silent port) fast; loopback sshd
# answers in milliseconds.
FAST = Timeouts(connect=2.0, auth=5.0, command=60.0, retries=1, backoff=0.1)
PYTHON = os.path.realpath(sys.executable)
REDIS_URL = "redis://127.0.0.1:6379/5"  # this suite's Redis DB; only this one is flushed


def fresh_fleet() -> Fleet | None:
    """A Fleet on an emptied DB 5, or None when no Redis answers."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2,
                                  socket_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError:
        return None
    return Fleet(client)


def sshd_missing_reason() -> str | None:
    if not os.path.exists(SSHD):
        return f"{SSHD} missing (apt-get install openssh-server, or: make test-deps)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen missing (apt-get install openssh-client)"
    if os.geteuid() != 0:
        return "sshd test hosts need root (privilege separation)"
    return None


def keygen(path: Path, comment: str = "benchfarm-test") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, timeout=30)
    return path


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def host_key_line(addr: str, port: int, pub: Path) -> str:
    kind, b64 = pub.read_text().split()[:2]
    return f"[{addr}]:{port} {kind} {b64}\n"


@dataclass
class SshdHost:
    addr: str
    port: int
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def host_pub(self) -> Path:
        return self.workdir / "host_ed25519.pub"

    @property
    def log(self) -> Path:
        return self.workdir / "sshd.log"

    def start(self, authorized_keys: Path, timeout: float = 10.0) -> SshdHost:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.host_pub.exists():
            keygen(self.workdir / "host_ed25519", "test-host-key")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation chroot
        config = self.workdir / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {self.addr}:{self.port}",
            f"HostKey {self.workdir / 'host_ed25519'}",
            f"AuthorizedKeysFile {authorized_keys}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AllowUsers {getpass.getuser()}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 50",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ]))
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.addr, self.port), timeout=1) as s:
                    s.settimeout(2)
                    if s.recv(64).startswith(b"SSH-2.0"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd on {self.addr}:{self.port} not ready after {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


def host_entry(name: str, sshd: SshdHost, key: Path, base: Path, **extra: object) -> dict:
    entry = {
        "name": name, "hostname": sshd.addr, "port": sshd.port, "user": getpass.getuser(),
        "key_file": str(key),
        "platform": "linux", "roles": ["agent"], "device_classes": ["host-cpu"], "labels": {"rack": "test"},
        "base_dir": str(base), "python": PYTHON, "env_path": [os.path.dirname(PYTHON)],
    }
    entry.update(extra)
    return entry


def write_inventory(path: Path, known_hosts: Path, entries: list[dict]) -> Inventory:
    path.write_text(yaml.safe_dump({"known_hosts": str(known_hosts), "hosts": entries}, sort_keys=False))
    return load_inventory(path)

"""``benchfarm hosts bootstrap``: put the agent on a host and keep it running, idempotently.

Every artefact (wheel, agent config, service definition) is rendered locally and
compared by sha256 with what the host already has (hashed on the host, nothing
transferred); only what differs is uploaded, and the service is restarted only when
something changed or it is not running. A second run on an up-to-date host changes
nothing and says so.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.fleetops import units
from orchestrator.fleetops.checks import probe
from orchestrator.fleetops.errors import FleetOpsError
from orchestrator.fleetops.inventory import Host
from orchestrator.fleetops.ssh import Remote, Timeouts

# What a wheel build never needs; copying the tree without them keeps the build fast and
# leaves no build/ or *.egg-info behind in the checkout (other engineers work in it).
_BUILD_IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                       "tests", "bench", "docker", ".pytest_cache", ".ruff_cache", "*.pte")
PIP_TIMEOUT_S = 900.0


@dataclass
class BootstrapReport:
    host: str
    service_mode: str = ""
    service_state: str = ""
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        what = "; ".join(self.changes) if self.changes else "no changes: wheel, config and unit up to date"
        return f"{self.host}: {what}; agent {self.service_state} ({self.service_mode})"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_wheel(source: Path, out_dir: Path, timeout: float = 600.0) -> Path:
    """``pip wheel --no-deps`` of the project from a clean copy of ``source``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="benchfarm-wheel-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(source, copy, ignore=_BUILD_IGNORE)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-input",
             "--disable-pip-version-check", str(copy), "-w", str(out_dir)],
            capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise FleetOpsError("localhost", f"pip wheel failed ({proc.returncode}): {proc.stderr[-2000:]}")
    wheels = sorted(out_dir.glob("*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise FleetOpsError("localhost", f"pip wheel produced no .whl in {out_dir}")
    return wheels[-1]


def bootstrap(host: Host, known_hosts: str, wheel: Path, redis_url: str, pip_args: list[str] | None = None,
              system_site_packages: bool = False, timeouts: Timeouts | None = None, artifact_url: str = "",
              api_token: str = "") -> BootstrapReport:
    """Install or update the agent on ``host`` from ``wheel``; start it as a service.
    ``artifact_url``/``api_token``: the agent fetches programs from the coordinator's API."""
    if "agent" not in host.roles:
        raise FleetOpsError(host.name, f"has roles {host.roles}, not 'agent': nothing to bootstrap")
    report = BootstrapReport(host.name)
    wheel_sha = sha256_file(wheel)
    with Remote(host, known_hosts, timeouts) as remote:
        layout = units.Layout(remote.path(), remote.home)
        modes = ["launchd"] if host.platform == "macos" else ["systemd", "supervised"]
        fixed = [f"{layout.base}/wheels/{wheel.name}", layout.env_file, layout.launcher, layout.service_json]
        # one round trip: host facts plus the hashes of everything bootstrap may write
        facts = probe(remote, [*fixed, *(layout.unit_path(m) for m in modes)])
        if (facts["system"] == "Darwin") != (host.platform == "macos"):
            raise FleetOpsError(host.name, f"inventory says platform {host.platform} but the host runs "
                                           f"{facts['system']}")
        mode = units.service_mode(host, facts["systemd_user"])
        report.service_mode = mode
        if mode == "supervised":
            report.notes.append("no `systemctl --user` on this host: the agent runs under a supervised "
                                "background process with a pid file (not restarted after a reboot)")
        files = {
            fixed[0]: (None, 0o644, "wheel"),
            layout.env_file: (units.agent_env(host, layout, redis_url, artifact_url, api_token).encode(), 0o600,
                              "agent config"),
            layout.launcher: (units.render_launcher(host, layout).encode(), 0o755, "agent launcher"),
            layout.unit_path(mode): (units.render_unit(host, layout, mode).encode(), 0o755, "service unit"),
            layout.service_json: (json.dumps({"mode": mode}).encode(), 0o644, "service mode"),
        }
        for path, (data, mode_bits, label) in files.items():
            want = wheel_sha if data is None else hashlib.sha256(data).hexdigest()
            if facts["hashes"].get(path) == want:
                continue
            if data is None:
                with wheel.open("rb") as fh:
                    remote.put_stream(fh, path, mode_bits)
            else:
                remote.put_bytes(data, path, mode_bits)
            report.changes.append(f"uploaded {label}")
        _install(remote, layout, facts, fixed[0], wheel_sha, pip_args or [], system_site_packages, report)
        _prune_wheels(remote, layout, wheel.name)
        _ensure_running(remote, layout, mode, facts["service_state"], report)
    return report


def _install(remote: Remote, layout: units.Layout, facts: dict, remote_wheel: str, wheel_sha: str,
             pip_args: list[str], system_site: bool, report: BootstrapReport) -> None:
    venv_python = f"{layout.venv}/bin/python"
    if not facts["venv"]:
        # A venv that sees the host's site-packages can use the host's pip; ensurepip
        # (slow: it unpacks and byte-compiles pip) runs only when there is none.
        flags = ["--system-site-packages", "--without-pip"] if system_site else []
        remote.run([remote.host.python, "-m", "venv", *flags, layout.venv], timeout=PIP_TIMEOUT_S)
        if remote.run([venv_python, "-m", "pip", "--version"], check=False).exit_code != 0:
            remote.run([venv_python, "-m", "ensurepip", "--default-pip"], timeout=PIP_TIMEOUT_S)
        report.changes.append("created venv")
    # the marker holds the sha of the installed wheel, written only after pip succeeded,
    # so an interrupted install is retried on the next run.
    elif facts["installed"] == wheel_sha:
        return
    pip = [venv_python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    remote.run([*pip, "uninstall", "-y", "benchfarm"], check=False, timeout=PIP_TIMEOUT_S)
    remote.run([*pip, "install", *pip_args, remote_wheel], timeout=PIP_TIMEOUT_S)
    remote.put_bytes(f"{wheel_sha}\n".encode(), layout.installed_marker)
    report.changes.append(f"installed wheel {wheel_sha[:12]}")


def _prune_wheels(remote: Remote, layout: units.Layout, keep: str) -> None:
    wheels_dir = f"{layout.base}/wheels"
    for name in remote.sftp.listdir(wheels_dir):
        if name.endswith(".whl") and name != keep:
            remote.sftp.remove(f"{wheels_dir}/{name}")


def _ensure_running(remote: Remote, layout: units.Layout, mode: str, state: str,
                    report: BootstrapReport) -> None:
    if report.changed or state != "running":
        remote.makedirs(f"{layout.base}/logs")
        remote.run(units.start_command(layout, mode), timeout=units.STOP_TIMEOUT_S + 60)
        report.changes.append("restarted agent" if state == "running" else "started agent")
        state = probe(remote)["service_state"]
    report.service_state = state
    if state != "running":
        tail = remote.run(["tail", "-n", "20", layout.log], check=False).stdout
        raise FleetOpsError(remote.host.name, f"agent service ({mode}) is {state} after start; "
                                              f"{shlex.quote(layout.log)} ends with:\n{tail}")

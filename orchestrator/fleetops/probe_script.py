"""Runs ON the remote host (``python3 - BASE_DIR [PATH...] < probe_script.py``), prints one JSON object.

Standard library only and no syntax newer than Python 3.8: it executes under whatever
interpreter the host has (macOS ships an old one), not under benchfarm's. One round trip
gathers everything ``hosts check`` and ``hosts bootstrap`` need about the host, including
the sha256 of the given PATHs (None when missing), so bootstrap compares without downloading.
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

LABEL = "dev.benchfarm.agent"  # launchd label; the systemd unit is benchfarm-agent.service


def _run(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        return proc.returncode, proc.stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)


def _pid_alive(pidfile):
    try:
        pid = int(open(pidfile).read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def service_state(base, mode):
    """(state, detail) of the agent service in the mode bootstrap installed it."""
    if mode == "systemd":
        code, out = _run(["systemctl", "--user", "is-active", "benchfarm-agent.service"])
        return ("running" if code == 0 else "stopped"), out
    if mode == "launchd":
        code, out = _run(["launchctl", "list", LABEL])
        running = code == 0 and '"PID"' in out
        return ("running" if running else "stopped"), ("loaded" if code == 0 else "not loaded")
    if mode == "supervised":
        pid = _pid_alive(os.path.join(base, "run", "agent.pid"))
        return ("running" if pid else "stopped"), (f"supervised pid {pid}" if pid else "no live pid")
    return "not-installed", "no agent service installed"


def _sha256(path):
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def _read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return ""


def main():
    base = os.path.expanduser(sys.argv[1])
    mode = None
    try:
        mode = json.load(open(os.path.join(base, "service.json"))).get("mode")
    except (OSError, ValueError):
        pass
    state, detail = service_state(base, mode)
    venv_bf = os.path.join(base, "venv", "bin", "benchfarm")
    disk = shutil.disk_usage(base if os.path.isdir(base) else os.path.expanduser("~"))
    systemd_code = 1
    if shutil.which("systemctl"):
        systemd_code, _ = _run(["systemctl", "--user", "show-environment"])
    print(json.dumps({
        "time": time.time(),
        "python": platform.python_version(),
        "system": platform.system(),
        "machine": platform.machine(),
        "home": os.path.expanduser("~"),
        "disk_free_bytes": disk.free,
        "disk_total_bytes": disk.total,
        "service_mode": mode,
        "service_state": state,
        "service_detail": detail,
        "systemd_user": systemd_code == 0,
        "benchfarm": venv_bf if os.access(venv_bf, os.X_OK) else shutil.which("benchfarm"),
        "draining": os.path.exists(os.path.join(base, "DRAINING")),
        "venv": os.access(os.path.join(base, "venv", "bin", "python"), os.X_OK),
        "installed": _read(os.path.join(base, "installed.sha256")),
        "hashes": {p: _sha256(p) for p in sys.argv[2:]},
    }))


if __name__ == "__main__":
    main()

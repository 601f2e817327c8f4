"""What bootstrap writes on a host: the agent's environment, its launcher and the service.

The service runs ``bin/run-agent.sh``, which loads ``agent.env`` (mode 0600: it holds the
broker URL, which may carry a password, so it is in no unit file and on no command line)
and execs ``benchfarm agent --name <host> --driver ...``, drivers chosen from the kinds of
the host's expected device classes.

Three ways to keep the agent running, picked per host:
- ``systemd``: a user unit, on Linux hosts where ``systemctl --user`` answers;
- ``launchd``: a LaunchAgent plist, on macOS (the agent needs the logged-in user's
  session for usbmuxd pairing records, so not a LaunchDaemon);
- ``supervised``: a small shell loop started with ``setsid`` and a pid file, for Linux
  hosts without a user systemd (containers, and the sshd test hosts). Reported as such,
  because it does not survive a reboot.

Every text is rendered deterministically, so its sha256 tells bootstrap whether the
host already has it.
"""

from __future__ import annotations

import json
import plistlib
import posixpath
import shlex
from dataclasses import dataclass
from string import Template

from device_inventory.catalog import catalog
from orchestrator.fleetops.inventory import Host

UNIT_NAME = "benchfarm-agent.service"
LAUNCHD_LABEL = "dev.benchfarm.agent"
# The agent finishes its current benchmark on SIGTERM; give it that long before a kill.
STOP_TIMEOUT_S = 600

_SYSTEMD = Template("""\
# Written by `benchfarm hosts bootstrap`; local edits are overwritten.
[Unit]
Description=benchfarm agent ($name)
After=network-online.target

[Service]
Type=simple
ExecStart=$exec_start
Environment=PATH=$path
Restart=always
RestartSec=5
TimeoutStopSec=$stop_timeout
StandardOutput=append:$log
StandardError=append:$log

[Install]
WantedBy=default.target
""")

_SUPERVISOR = Template("""\
#!/bin/sh
# Written by `benchfarm hosts bootstrap`: keeps the agent running on a host without a
# user systemd. Restarts it when it exits; forwards SIGTERM so a stop lets it finish.
PATH=$path
export PATH
child=
trap 'test -n "$$child" && kill -TERM "$$child" 2>/dev/null; wait "$$child"; exit 0' TERM INT
while :; do
  $exec_start >>$log 2>&1 &
  child=$$!
  wait "$$child"
  status=$$?
  echo "$$(date -u +%Y-%m-%dT%H:%M:%SZ) agent exited with status $$status; restarting in 5s" >>$log
  sleep 5 &
  child=$$!
  wait "$$child"
done
""")


_LAUNCHER = Template("""\
#!/bin/sh
# Written by `benchfarm hosts bootstrap`; local edits are overwritten.
set -a
. $env_file
set +a
exec $exec_agent
""")


@dataclass(frozen=True)
class Layout:
    """Where things live on one host (all absolute, resolved against its home dir)."""

    base: str
    home: str

    @property
    def venv(self) -> str:
        return posixpath.join(self.base, "venv")

    @property
    def benchfarm(self) -> str:
        return posixpath.join(self.venv, "bin", "benchfarm")

    @property
    def env_file(self) -> str:
        return posixpath.join(self.base, "agent.env")

    @property
    def launcher(self) -> str:
        return posixpath.join(self.base, "bin", "run-agent.sh")

    @property
    def log(self) -> str:
        return posixpath.join(self.base, "logs", "agent.log")

    @property
    def pidfile(self) -> str:
        return posixpath.join(self.base, "run", "agent.pid")

    @property
    def drain_marker(self) -> str:
        return posixpath.join(self.base, "DRAINING")

    @property
    def installed_marker(self) -> str:
        return posixpath.join(self.base, "installed.sha256")

    @property
    def service_json(self) -> str:
        return posixpath.join(self.base, "service.json")

    def unit_path(self, mode: str) -> str:
        if mode == "systemd":
            return posixpath.join(self.home, ".config", "systemd", "user", UNIT_NAME)
        if mode == "launchd":
            return posixpath.join(self.home, "Library", "LaunchAgents", f"{LAUNCHD_LABEL}.plist")
        return posixpath.join(self.base, "bin", "supervise.sh")


def agent_argv(host: Host, layout: Layout) -> list[str]:
    """``benchfarm agent`` for this host: the ios driver for phone/tablet classes, the host
    driver for ``host-cpu`` (and when no class is declared, as the agent itself defaults)."""
    kinds = {catalog().classes[c].kind for c in host.device_classes} or {"host"}
    drivers = [arg for kind in sorted(kinds) for arg in ("--driver", kind)]
    return [layout.benchfarm, "agent", "--name", host.name, *drivers]


def agent_env(host: Host, layout: Layout, redis_url: str, artifact_url: str = "", api_token: str = "") -> str:
    """``agent.env``: sourced by the launcher. Mode 0600 (the broker URL may hold a password,
    and the API token is a secret). With ``artifact_url`` the agent downloads programs from
    the coordinator's API instead of reading a shared store path."""
    env = {
        "REDIS_URL": redis_url,
        "BENCHFARM_AGENT_NAME": host.name,
        "BENCHFARM_DRAIN_MARKER": layout.drain_marker,
        "BENCHFARM_DEVICE_CLASSES": ",".join(host.device_classes),
        "BENCHFARM_HOST_LABELS": json.dumps(host.labels, sort_keys=True),
    }
    if artifact_url:
        env |= {"BENCHFARM_ARTIFACT_URL": artifact_url, "BENCHFARM_API_TOKEN": api_token}
    lines = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    header = "# Written by `benchfarm hosts bootstrap`; local edits are overwritten."
    return "\n".join([header, *lines]) + "\n"


def render_launcher(host: Host, layout: Layout) -> str:
    return _LAUNCHER.substitute(env_file=shlex.quote(layout.env_file),
                                exec_agent=shlex.join(agent_argv(host, layout)))


def service_mode(host: Host, systemd_user: bool) -> str:
    if host.platform == "macos":
        return "launchd"
    return "systemd" if systemd_user else "supervised"


def _path(host: Host, layout: Layout) -> str:
    entries = [posixpath.join(layout.venv, "bin"), *host.env_path, "/usr/local/bin", "/usr/bin", "/bin"]
    return ":".join(entries)


def render_unit(host: Host, layout: Layout, mode: str) -> str:
    argv = ["/bin/sh", layout.launcher]
    if mode == "launchd":
        plist = {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": argv,
            "EnvironmentVariables": {"PATH": _path(host, layout)},
            "RunAtLoad": True,
            "KeepAlive": True,
            "ExitTimeOut": STOP_TIMEOUT_S,
            "StandardOutPath": layout.log,
            "StandardErrorPath": layout.log,
        }
        return plistlib.dumps(plist, sort_keys=True).decode()
    fields = {"name": host.name, "path": _path(host, layout), "log": layout.log,
              "stop_timeout": STOP_TIMEOUT_S}
    if mode == "systemd":
        return _SYSTEMD.substitute(fields, exec_start=" ".join(argv))
    return _SUPERVISOR.substitute({k: shlex.quote(str(v)) for k, v in fields.items()},
                                  exec_start=shlex.join(argv))


def start_command(layout: Layout, mode: str) -> str:
    """Shell line that (re)starts the service and leaves it running."""
    unit = shlex.quote(layout.unit_path(mode))
    if mode == "systemd":
        return f"systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME} " \
               f"&& systemctl --user restart {UNIT_NAME}"
    if mode == "launchd":
        target = 'gui/"$(id -u)"'
        return f"launchctl bootout {target}/{LAUNCHD_LABEL} 2>/dev/null; launchctl bootstrap {target} {unit}"
    pidfile = shlex.quote(layout.pidfile)
    return (f"{stop_command(layout, mode)}; mkdir -p {shlex.quote(posixpath.dirname(layout.pidfile))} "
            f"{shlex.quote(posixpath.dirname(layout.log))}; "
            f"setsid sh {unit} </dev/null >/dev/null 2>&1 & echo $! > {pidfile}")


def stop_command(layout: Layout, mode: str) -> str:
    if mode == "systemd":
        return f"systemctl --user stop {UNIT_NAME}"
    if mode == "launchd":
        return f'launchctl bootout gui/"$(id -u)"/{LAUNCHD_LABEL}'
    # The supervisor leads its own process group (setsid): signal the whole group, then
    # wait up to STOP_TIMEOUT_S for the agent to finish its job.
    pidfile = shlex.quote(layout.pidfile)
    return (f"if [ -f {pidfile} ] && pid=$(cat {pidfile}) && kill -0 \"$pid\" 2>/dev/null; then "
            f"kill -TERM -- -\"$pid\" 2>/dev/null || kill -TERM \"$pid\"; n=0; "
            f"while kill -0 \"$pid\" 2>/dev/null && [ $n -lt {STOP_TIMEOUT_S * 10} ]; "
            "do sleep 0.1; n=$((n+1)); done; "
            f"fi; rm -f {pidfile}")

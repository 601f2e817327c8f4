"""bootstrap against a real sshd host: wheel, venv, config, supervised agent; idempotent."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from device_inventory.fleet import Fleet
from orchestrator.cli.hosts import hosts_app
from orchestrator.fleetops.bootstrap import bootstrap, build_wheel
from orchestrator.fleetops.checks import check_host
from orchestrator.fleetops.errors import FleetOpsError
from orchestrator.fleetops.ssh import Remote

from .testhosts import FAST, PYTHON, REDIS_URL, fresh_fleet

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory) -> Path:
    return build_wheel(REPO, tmp_path_factory.mktemp("wheel"))


def _pid(base: Path) -> int:
    return int((base / "run" / "agent.pid").read_text().strip())


def test_wheel_carries_the_probe_and_no_tests(project_wheel):
    names = zipfile.ZipFile(project_wheel).namelist()
    assert "orchestrator/fleetops/probe_script.py" in names  # read with importlib.resources at run time
    assert "device_inventory/catalog.yaml" in names
    assert not any(n.startswith("tests/") for n in names)


def test_bootstrap_then_idempotent_then_config_change(inventory, project_wheel, tmp_path):
    host = inventory.hosts[0]
    base = Path(host.base_dir)
    fleet = fresh_fleet()
    first = bootstrap(host, inventory.known_hosts, project_wheel, REDIS_URL,
                      pip_args=["--no-deps"], system_site_packages=True, timeouts=FAST)
    assert first.service_mode == "supervised"  # no user systemd inside the test sshd
    assert any("supervised background process" in n for n in first.notes)
    assert {"uploaded wheel", "uploaded agent config", "uploaded service unit", "created venv",
            "started agent"} <= set(first.changes)
    assert first.service_state == "running"
    config = base / "agent.env"
    assert oct(config.stat().st_mode & 0o777) == "0o600", "the config holds the broker URL"
    assert "REDIS_URL=redis://127.0.0.1:6379/5\n" in config.read_text()
    assert "BENCHFARM_AGENT_NAME=h0\n" in config.read_text()
    assert (base / "venv" / "bin" / "benchfarm").exists()
    pid = _pid(base)
    os.kill(pid, 0)  # the supervisor runs (same machine as the test host)
    _wait_for_agent_device(fleet, "h0", base)

    # second run through the CLI, with the same wheel and settings
    second = CliRunner().invoke(hosts_app, [
        "bootstrap", "h0", "-i", str(tmp_path / "hosts.yaml"), "--wheel", str(project_wheel),
        "--pip-args", "--no-deps", "--system-site-packages", "--redis-url", "redis://127.0.0.1:6379/5"])
    assert second.exit_code == 0, second.output
    assert "h0: no changes: wheel, config and unit up to date; agent running (supervised)" in \
        " ".join(second.stdout.split())
    assert _pid(base) == pid, "an up-to-date host must not be restarted"

    # a different URL for the same Redis DB (5 is this suite's): the config changes
    third = bootstrap(host, inventory.known_hosts, project_wheel, "redis://localhost:6379/5",
                      pip_args=["--no-deps"], system_site_packages=True, timeouts=FAST)
    assert third.changes == ["uploaded agent config", "restarted agent"]
    assert _pid(base) != pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    status = check_host(host, inventory.known_hosts, FAST)
    assert status.ok and status.service == "running (supervised)"
    assert "not installed" not in status.devices_note
    if status.devices is not None:  # `benchfarm devices` ran from the bootstrapped venv
        assert any(d.get("device_class") == "host-cpu" for d in status.devices)
        assert status.missing_classes == []


def _wait_for_agent_device(fleet: Fleet | None, agent: str, base: Path, timeout: float = 90) -> None:
    """The bootstrapped agent itself registers its host-CPU device in Redis (DB 5)."""
    if fleet is None:
        return  # bootstrap is still verified above; the agent just has no broker to talk to
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(d.get("agent") == agent for d in fleet.devices()):
            return
        time.sleep(0.5)
    log = base / "logs" / "agent.log"
    pytest.fail(f"agent {agent} registered no device in {timeout}s; log:\n"
                f"{log.read_text()[-2000:] if log.exists() else '(none)'}")


def test_bootstrap_refuses_platform_mismatch(inventory, project_wheel):
    mac = inventory.hosts[1].model_copy(update={"platform": "macos"})
    with pytest.raises(FleetOpsError, match="platform macos but the host runs Linux"):
        bootstrap(mac, inventory.known_hosts, project_wheel, "redis://x", timeouts=FAST)
    with Remote(mac, inventory.known_hosts, FAST) as r:
        assert r.run(["ls", r.path()], check=False).exit_code != 0, "nothing written on refusal"


def test_check_reports_benchfarm_not_installed(inventory, tmp_path):
    # The login shell may put a development benchfarm on PATH (~/.bashrc with pyenv here):
    # run the probe through an interpreter wrapper with a plain PATH, as a bare host has.
    wrapper = tmp_path / "python-plain-path"
    wrapper.write_text(f"#!/bin/sh\nPATH=/usr/bin:/bin exec {PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    host = inventory.hosts[2].model_copy(update={"env_path": [], "python": str(wrapper)})
    if any(os.access(f"{d}/benchfarm", os.X_OK) for d in ("/usr/bin", "/bin")):
        pytest.skip("benchfarm is installed system-wide on the test host")
    status = check_host(host, inventory.known_hosts, FAST)
    assert status.ok
    assert status.devices is None and "benchfarm not installed" in status.devices_note
    assert status.service == "not-installed (none)"
    assert abs(status.clock_skew_s) < 1.0

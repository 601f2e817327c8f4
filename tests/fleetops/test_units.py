"""Service definitions rendered for each platform: parseable, pointing at the agent, deterministic."""

from __future__ import annotations

import plistlib
import shutil
import subprocess

import pytest
import yaml

from orchestrator.fleetops import units
from orchestrator.fleetops.inventory import Host

HOST = Host(name="mac-1", hostname="mac-1.lab", user="bench", platform="macos", roles=["agent"],
            device_classes=["a17"], labels={"rack": "a"}, env_path=["/opt/homebrew/bin"])
LAYOUT = units.Layout(base="/Users/bench/.benchfarm", home="/Users/bench")
ARGV = ["/Users/bench/.benchfarm/venv/bin/benchfarm", "agent", "--config",
        "/Users/bench/.benchfarm/agent.yaml"]


def test_launchd_plist():
    plist = plistlib.loads(units.render_unit(HOST, LAYOUT, "launchd").encode())
    assert plist["Label"] == units.LAUNCHD_LABEL and plist["ProgramArguments"] == ARGV
    assert plist["KeepAlive"] is True and plist["RunAtLoad"] is True
    assert plist["StandardOutPath"] == LAYOUT.log
    assert plist["EnvironmentVariables"]["PATH"].split(":")[:2] == ["/Users/bench/.benchfarm/venv/bin",
                                                                     "/opt/homebrew/bin"]
    assert LAYOUT.unit_path("launchd") == "/Users/bench/Library/LaunchAgents/dev.benchfarm.agent.plist"


def test_systemd_unit():
    text = units.render_unit(HOST, LAYOUT, "systemd")
    assert f"ExecStart={' '.join(ARGV)}\n" in text
    assert "Restart=always\n" in text and f"StandardOutput=append:{LAYOUT.log}\n" in text
    assert "WantedBy=default.target" in text
    assert LAYOUT.unit_path("systemd") == "/Users/bench/.config/systemd/user/benchfarm-agent.service"
    assert units.render_unit(HOST, LAYOUT, "systemd") == text, "hash comparison needs deterministic output"


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX sh")
@pytest.mark.parametrize("mode", ["supervised", "systemd", "launchd"])
def test_shell_lines_parse(mode):
    scripts = [units.start_command(LAYOUT, mode), units.stop_command(LAYOUT, mode)]
    if mode == "supervised":
        scripts.append(units.render_unit(HOST, LAYOUT, mode))
    for script in scripts:
        proc = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True, timeout=10)
        assert proc.returncode == 0, f"{script}\n{proc.stderr}"


def test_service_mode_and_agent_config():
    linux = HOST.model_copy(update={"platform": "linux"})
    assert units.service_mode(HOST, systemd_user=True) == "launchd"
    assert units.service_mode(linux, systemd_user=True) == "systemd"
    assert units.service_mode(linux, systemd_user=False) == "supervised"
    doc = yaml.safe_load(units.agent_config(HOST, LAYOUT, "redis://:pw@redis:6379/0"))
    assert doc == {"host": "mac-1", "redis_url": "redis://:pw@redis:6379/0", "device_classes": ["A17-Pro"],
                   "labels": {"rack": "a"}, "roles": ["agent"], "drain_marker": LAYOUT.drain_marker,
                   "log_file": LAYOUT.log}

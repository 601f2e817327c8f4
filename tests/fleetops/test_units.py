"""Service definitions rendered for each platform: parseable, pointing at the agent, deterministic."""

from __future__ import annotations

import plistlib
import shutil
import subprocess

import pytest

from orchestrator.fleetops import units
from orchestrator.fleetops.inventory import Host

HOST = Host(name="mac-1", hostname="mac-1.lab", user="bench", platform="macos", roles=["agent"],
            device_classes=["a17"], labels={"rack": "a"}, env_path=["/opt/homebrew/bin"])
LAYOUT = units.Layout(base="/Users/bench/.benchfarm", home="/Users/bench")
ARGV = ["/bin/sh", "/Users/bench/.benchfarm/bin/run-agent.sh"]


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
        scripts += [units.render_unit(HOST, LAYOUT, mode), units.render_launcher(HOST, LAYOUT)]
    for script in scripts:
        proc = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True, timeout=10)
        assert proc.returncode == 0, f"{script}\n{proc.stderr}"


def test_service_mode():
    linux = HOST.model_copy(update={"platform": "linux"})
    assert units.service_mode(HOST, systemd_user=True) == "launchd"
    assert units.service_mode(linux, systemd_user=True) == "systemd"
    assert units.service_mode(linux, systemd_user=False) == "supervised"


def test_launcher_sources_env_and_picks_drivers(tmp_path):
    bench = f"{LAYOUT.venv}/bin/benchfarm"
    assert units.agent_argv(HOST, LAYOUT) == [bench, "agent", "--name", "mac-1", "--driver", "ios"]
    mixed = HOST.model_copy(update={"device_classes": ["A15", "host-cpu"]})
    assert units.agent_argv(mixed, LAYOUT)[4:] == ["--driver", "host", "--driver", "ios"]
    bare = HOST.model_copy(update={"device_classes": []})
    assert units.agent_argv(bare, LAYOUT)[4:] == ["--driver", "host"]
    # the env file is valid sh and round-trips values with shell metacharacters
    env = tmp_path / "agent.env"
    env.write_text(units.agent_env(HOST, LAYOUT, "redis://:p$w d'q@redis:6379/0"))
    out = subprocess.run(["sh", "-c", f". {env}; printf '%s|%s|%s' \"$REDIS_URL\" \"$BENCHFARM_AGENT_NAME\" "
                          "\"$BENCHFARM_HOST_LABELS\""], capture_output=True, text=True, timeout=10).stdout
    assert out == "redis://:p$w d'q@redis:6379/0|mac-1|{\"rack\": \"a\"}"
    assert "BENCHFARM_ARTIFACT_URL" not in env.read_text()  # shared store path unless asked
    env.write_text(units.agent_env(HOST, LAYOUT, "redis://r/0", "http://coord:8000", "bf_x.y'z"))
    out = subprocess.run(["sh", "-c", f". {env}; printf '%s|%s' \"$BENCHFARM_ARTIFACT_URL\" \"$BENCHFARM_API_TOKEN\""],
                         capture_output=True, text=True, timeout=10).stdout
    assert out == "http://coord:8000|bf_x.y'z"
    launcher = units.render_launcher(HOST, LAYOUT)
    assert f". {LAYOUT.env_file}\n" in launcher and launcher.endswith(f"exec {bench} agent --name mac-1 "
                                                                      "--driver ios\n")

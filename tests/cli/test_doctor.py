"""`benchfarm doctor` against real parts: real Redis, a real SQLite store, real Celery worker
and agent processes, and a virtual iOS fleet that the doctor reaches through pymobiledevice3
over usbmux, with faults injected (Redis down, no exporter, Developer Mode off, not paired)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.virtual.fleet import DeviceSpec, FleetSpec, HostSpec
from agents.virtual.testing import FleetHandle, running_fleet
from device_inventory.fleet import Fleet
from orchestrator.cli.main import app
from orchestrator.store.db import engine
from tests.conftest import Procs, wait_until

runner = CliRunner()
A17, A15 = "iPhone16,1", "iPhone14,5"


def doctor(*args: str, **env: str) -> tuple[int, dict[str, dict[str, str]]]:
    """Exit status and findings by check name (``--json``)."""
    out = runner.invoke(app, ["doctor", *args, "--json"], env={"COLUMNS": "80", **env})
    return out.exit_code, {f["check"]: f for f in json.loads(out.output)}


def doctor_text(*args: str, **env: str) -> tuple[int, str]:
    out = runner.invoke(app, ["doctor", *args], env={"COLUMNS": "80", **env})
    return out.exit_code, out.output


@pytest.fixture
def ios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetHandle]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no pair records from elsewhere
    spec = FleetSpec(defaults={"time_compression": 1000.0},
                     hosts=[HostSpec(name="t", devices=[DeviceSpec(product_type=A17, ios="26.1"),
                                                        DeviceSpec(product_type=A15, ios="16.6")])])
    with running_fleet(spec) as handle:
        yield handle


def test_redis_down_and_an_old_database(bf_env: dict[str, str], tmp_path: Path) -> None:
    old_db = tmp_path / "old.db"
    with sqlite3.connect(old_db) as db:  # a store made before schema migrations
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
    code, found = doctor("--role", "coordinator", REDIS_URL="redis://127.0.0.1:1/0", BENCHFARM_DB=str(old_db))
    assert code == 1 and found["redis"]["status"] == "fail" and "REDIS_URL" in found["redis"]["remedy"]
    assert found["workers"]["status"] == "skip"
    old = found["database"]
    assert old["status"] == "fail" and "before schema migrations" in old["detail"] and "db upgrade" in old["remedy"]
    code, text = doctor_text("--role", "coordinator", REDIS_URL="redis://127.0.0.1:1/0")
    assert code == 1 and "FAIL redis: no answer at redis://127.0.0.1:1/0" in text and "1 problem(s)" in text


def test_devices_the_agents_report_unusable(bf_env: dict[str, str]) -> None:
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    for udid, state in (("00008130-000A1B2C3D4E5F60", "developer_mode_off"),
                        ("00008110-000B1C2D3E4F5061", "ddi_missing"), ("00008112-000C1D2E3F405162", "quarantined")):
        fleet.register(udid, {"device_class": "A17-Pro", "os": "iOS", "os_version": "18.6.2", "agent": "mini-1"})
        fleet.set_state(udid, state, "seen by the agent")
    code, found = doctor("--role", "coordinator")
    assert code == 1
    off = found["device 00008130-000A1B2C3D4E5F60"]
    assert off["status"] == "fail" and "Developer Mode" in off["remedy"] and "developer_mode_off" in off["detail"]
    assert found["device 00008110-000B1C2D3E4F5061"]["status"] == "fail"
    assert "mounter auto-mount" in found["device 00008110-000B1C2D3E4F5061"]["remedy"]
    quarantined = found["device 00008112-000C1D2E3F405162"]
    assert quarantined["status"] == "warn" and "devices check 00008112-000C1D2E3F405162" in quarantined["remedy"]


def test_healthy_virtual_farm_then_faults(bf_env: dict[str, str], procs: Procs, ios: FleetHandle) -> None:
    engine()  # the results store exists, schema current
    usbmux = ["--usbmux", ios.usbmux_address]
    # nothing running yet: no coordinator, no exporter, no agent
    code, found = doctor("--role", "coordinator")
    assert code == 1
    coordinator = found["coordinator worker"]
    assert coordinator["status"] == "fail" and "benchfarm worker" in coordinator["remedy"]
    assert found["exporter linux"]["status"] == "fail" and found["agents"]["status"] == "fail"
    macos = found["exporter macos"]
    assert macos["status"] == "warn" and "MPS" in macos["detail"] and "block" in macos["detail"]

    procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "1")
    procs.start("agent", "agent", "--driver", "host", "--name", "doc")
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    wait_until(lambda: any(d.get("state") == "available" for d in fleet.devices()), 90, "the host device")
    # the coordinator role first (no device probes): until the worker answers Celery's inspect
    wait_until(lambda: doctor("--role", "coordinator")[0] == 0, 60, "the worker to answer", every=1)
    code, text = doctor_text("--role", "coordinator")
    assert code == 0 and "nothing needed is missing" in text, text
    code, found = doctor(*usbmux)
    assert code == 0, found
    a17, a15 = sorted(ios.udids, key=lambda u: not u.startswith("00008130"))
    assert found[f"device {a17} developer mode"]["detail"] == "on"
    assert found[f"device {a17} developer image"]["detail"] == "Personalized image mounted"
    assert found[f"device {a15} developer image"]["detail"] == "Developer image mounted"
    assert "tunnel up, RSD lists" in found[f"device {a17} tunnel"]["detail"]  # iOS 26: through CoreDeviceProxy
    assert "not needed" in found[f"device {a15} tunnel"]["detail"] and found["agent doc"]["status"] == "ok"

    ios.inject_fault(a17, "developer_mode_off")
    ios.inject_fault(a15, "not_paired")
    code, found = doctor(*usbmux)
    assert code == 1, found
    off = found[f"device {a17} developer mode"]
    assert off["status"] == "fail" and "Settings > Privacy & Security > Developer Mode" in off["remedy"]
    unpaired = found[f"device {a15} paired"]
    assert unpaired["status"] == "fail" and "Trust" in unpaired["remedy"]
    assert found[f"device {a15} harness"]["status"] == "skip"
    assert all(f["status"] == "ok" for k, f in found.items() if k in ("coordinator worker", "exporter linux"))

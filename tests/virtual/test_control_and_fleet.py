"""The control socket (JSON lines), the fleet YAML, seeded chaos and the serve entry point."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.virtual.control import ControlClient, ControlError
from agents.virtual.faults import Chaos
from agents.virtual.fleet import FleetSpec, build_server, load_fleet
from agents.virtual.testing import FleetHandle, running_fleet
from orchestrator.spec.yamlpos import SpecError, loads_validated
from tests.virtual.conftest import A15, A17, M2, pmd, spec

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def test_example_fleet_is_valid_and_has_the_seed_chips() -> None:
    fleet = load_fleet(ROOT / "examples" / "virtual-fleet.yaml")
    types = {d.product_type for h in fleet.hosts for d in h.devices}
    assert {A17, A15, M2} <= types
    server = build_server(fleet)
    assert len(server.devices) == 5
    again = build_server(load_fleet(ROOT / "examples" / "virtual-fleet.yaml"))
    assert list(again.devices) == list(server.devices)  # UDIDs are stable across starts
    assert len(build_server(fleet, host="vhost-b").devices) == 1


@pytest.mark.parametrize(("text", "problem"), [
    ("hosts:\n  - name: a\n    devices:\n      - product_type: iPhone99,9\n        ios: '16.0'\n",
     "<fleet>:4: hosts[0].devices[0].product_type: ProductType 'iPhone99,9' is not in the catalog"),
    # an iPhone 15 Pro never ran iOS 16: the pair is refused with the allowed range
    ("hosts:\n  - name: a\n    devices:\n      - product_type: iPhone16,1\n        ios: '16.6'\n",
     "<fleet>:5: hosts[0].devices[0].ios: iPhone16,1 (iPhone 15 Pro) cannot run iOS 16.6: it shipped with 17.0 "
     "and supports up to 26.x (allowed: 17.0 to 26.x)"),
    ("hosts:\n  - name: a\n    devices:\n      - product_type: iPhone14,5\n        ios: '27.0'\n",
     "<fleet>:5: hosts[0].devices[0].ios: iPhone14,5 (iPhone 13) cannot run iOS 27.0"),
    # a possible version whose real build number nobody confirmed is not invented
    ("hosts:\n  - name: a\n    devices:\n      - product_type: iPhone14,5\n        ios: '17.2'\n",
     "<fleet>:5: hosts[0].devices[0].ios: iOS 17.2: no confirmed build number in catalog.yaml"),
    ("hosts:\n  - name: a\n    devices:\n      - product_type: iPhone16,1\n        ios: '26.1'\n"
     "        faults: [{kind: gremlins}]\n", "<fleet>:6: hosts[0].devices[0].faults[0]: unknown fault 'gremlins'"),
])
def test_fleet_errors_name_file_and_line(text: str, problem: str) -> None:
    with pytest.raises(SpecError) as err:
        loads_validated(FleetSpec, text, "<fleet>")
    assert problem in str(err.value)


def test_control_socket_commands(client_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_fleet(spec((A17, "26.1"), (A15, "18.6.2"))) as fleet:
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", fleet.usbmux_address)
        udid = fleet.udids[0]
        with ControlClient(fleet.control_address) as ctl:
            assert ctl.call("ping")["devices"] == 2
            ctl.call("unplug", udid=udid)
            assert json.loads(pmd("usbmux", "list", "--simple").stdout) == [fleet.udids[1]]
            ctl.call("plug", udid=udid)
            assert len(json.loads(pmd("usbmux", "list", "--simple").stdout)) == 2
            fault = ctl.call("fault", udid=udid, kind="low_battery", level=3, duration_s=60)["fault"]
            assert fault["kind"] == "low_battery" and fault["params"]["level"] == 3
            assert ctl.call("device", udid=udid)["device"]["battery_level"] == 3
            ctl.call("clear", udid=udid)
            assert ctl.call("device", udid=udid)["device"]["faults"] == []
            new = ctl.call("add_device", product_type=M2, ios="26.1")["udid"]
            assert new in [d["udid"] for d in ctl.call("list")["devices"]]
            assert "hang" in ctl.call("faults")["kinds"]
            with pytest.raises(ControlError, match="unknown fault"):
                ctl.call("fault", udid=udid, kind="gremlins")
            with pytest.raises(ControlError, match="no virtual device"):
                ctl.call("unplug", udid="nope")
            with pytest.raises(ControlError, match="unknown command"):
                ctl.call("explode")


def test_chaos_is_seeded() -> None:
    udids = [f"u{i}" for i in range(50)]
    chaos = Chaos(seed=42, probabilities={"unplug": 0.1, "harness_crash": 0.05})
    first = [chaos.draws(udids, rng) for rng in [random.Random(42)] for _ in range(5)]
    second = [chaos.draws(udids, rng) for rng in [random.Random(42)] for _ in range(5)]
    assert first == second and any(first)


def test_chaos_injects_faults(client_home: Path) -> None:
    chaos = {"seed": 1, "interval_s": 0.05, "duration_s": 30, "probabilities": {"low_battery": 1.0}}
    fleet_spec = FleetSpec.model_validate(
        {"hosts": [{"name": "x", "devices": [{"product_type": A17, "ios": "26.1"}]}], "chaos": chaos})
    with running_fleet(fleet_spec) as fleet:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not fleet.device(fleet.udids[0])["faults"]:
            time.sleep(0.05)
        assert fleet.device(fleet.udids[0])["faults"][0]["kind"] == "low_battery"


def test_serve_entry_point(tmp_path: Path, client_home: Path) -> None:
    """python -m agents.virtual serve: ready line on stdout, JSON logs on stderr, ctl subcommand."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.virtual", "serve", "--fleet", str(ROOT / "examples" / "virtual-fleet.yaml"),
         "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--host", "vhost-a"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready" and len(ready["devices"]) == 4
        out = pmd("usbmux", "list", "--simple", env_extra={"USBMUXD_SOCKET_ADDRESS": ready["usbmux"]})
        assert sorted(json.loads(out.stdout)) == sorted(ready["devices"])
        ctl = subprocess.run([sys.executable, "-m", "agents.virtual", "ctl", "--control", ready["control"],
                              "unplug", f"udid={ready['devices'][0]}"], cwd=ROOT, capture_output=True, text=True)
        assert ctl.returncode == 0 and json.loads(ctl.stdout)["ok"] is True
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {"listening", "unplug"} <= {e["event"] for e in events}
    assert all({"ts", "level", "logger", "event"} <= set(e) for e in events)


def test_unix_socket_listen(tmp_path: Path, client_home: Path) -> None:
    path = str(tmp_path / "usbmuxd.sock")
    with running_fleet(spec((A15, "16.6")), listen=path) as fleet:
        assert fleet.usbmux_address == path
        out = pmd("usbmux", "list", "--simple", env_extra={"USBMUXD_SOCKET_ADDRESS": path})
        assert json.loads(out.stdout) == fleet.udids
    assert not os.path.exists(path)


def test_handle_refuses_calls_from_the_loop(one_device: FleetHandle) -> None:
    with pytest.raises(RuntimeError, match="deadlock"):
        one_device.call(lambda s: one_device.call(lambda _: None))


def test_fleet_file_faults_apply_at_start(client_home: Path) -> None:
    with running_fleet(ROOT / "examples" / "virtual-fleet.yaml", host="vhost-b") as fleet:
        (udid,) = fleet.udids
        kinds = {f["kind"]: f for f in fleet.device(udid)["faults"]}
        assert kinds["harness_crash"]["count"] == 1 and kinds["slow_afc"]["params"]["delay_s"] == 0.05
        assert fleet.device(udid)["name"] == "flaky iPhone 13"

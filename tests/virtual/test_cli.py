"""pymobiledevice3's own CLI, unchanged, against the virtual usbmuxd (subprocesses, private HOME)."""

from __future__ import annotations

import json

import pytest

from agents.virtual.testing import FleetHandle
from tests.virtual.conftest import pmd

pytestmark = pytest.mark.timeout(120)


def test_usbmux_list_shows_every_device(fleet: FleetHandle) -> None:
    out = pmd("usbmux", "list")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert sorted(d["UniqueDeviceID"] for d in listed) == sorted(fleet.udids)
    by_type = {d["ProductType"]: d for d in listed}
    assert set(by_type) == {"iPhone16,1", "iPhone14,5", "iPad14,3"}
    assert by_type["iPhone14,5"]["ProductVersion"] == "15.7"
    assert by_type["iPad14,3"]["DeviceClass"] == "iPad"
    assert all(d["ConnectionType"] == "USB" for d in listed)


def test_lockdown_info(fleet: FleetHandle) -> None:
    udid = fleet.udids[0]
    out = pmd("lockdown", "info", "--udid", udid)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["UniqueDeviceID"] == udid
    assert info["ProductType"] == "iPhone16,1"
    assert info["ProductVersion"] == "16.6"
    assert info["HardwareModel"] == "D83AP"

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
    assert by_type["iPhone14,5"]["ProductVersion"] == "18.6.2"
    assert by_type["iPad14,3"]["DeviceClass"] == "iPad"
    assert all(d["ConnectionType"] == "USB" for d in listed)


def test_lockdown_info(fleet: FleetHandle) -> None:
    udid = fleet.udids[0]
    out = pmd("lockdown", "info", "--udid", udid)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["UniqueDeviceID"] == udid
    assert info["ProductType"] == "iPhone16,1"
    assert info["ProductVersion"] == "26.1" and info["BuildVersion"] == "23B85"
    assert info["HardwareModel"] == "D83AP"


def test_apps_list(fleet: FleetHandle, tmp_path) -> None:
    from agents.virtual.device import HARNESS_BUNDLE_ID

    udid = fleet.udids[1]
    fleet.call(lambda s: s.device(udid).install(HARNESS_BUNDLE_ID, {"CFBundleVersion": "7"}))
    out = pmd("apps", "list", "--udid", udid)
    assert out.returncode == 0, out.stderr
    apps = json.loads(out.stdout)
    assert apps[HARNESS_BUNDLE_ID]["CFBundleVersion"] == "7"
    assert apps["com.apple.mobilesafari"]["ApplicationType"] == "System"
    user = json.loads(pmd("apps", "list", "--type", "User", "--udid", udid).stdout)
    assert list(user) == [HARNESS_BUNDLE_ID]


def test_afc_ls(fleet: FleetHandle) -> None:
    udid = fleet.udids[2]
    fleet.call(lambda s: s.device(udid).media.write("Downloads/notes/a.txt", b"x"))
    out = pmd("afc", "ls", "/", "--udid", udid)
    assert out.returncode == 0, out.stderr
    assert {"/DCIM", "/Downloads", "/PublicStaging"} <= set(out.stdout.split())
    out = pmd("afc", "ls", "-r", "/Downloads", "--udid", udid)
    assert out.returncode == 0, out.stderr
    assert "/Downloads/notes/a.txt" in out.stdout.split()

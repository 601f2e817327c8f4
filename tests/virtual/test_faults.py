"""Every fault kind, observed the way a client sees it: over usbmux, lockdown, AFC, DVT."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from pymobiledevice3 import usbmux
from pymobiledevice3.exceptions import (
    AppInstallError,
    ConnectionTerminatedError,
    DeviceNotFoundError,
    NotPairedError,
    UserDeniedPairingError,
)
from pymobiledevice3.services.afc import AfcService
from pymobiledevice3.services.diagnostics import DiagnosticsService
from pymobiledevice3.services.installation_proxy import InstallationProxyService

from agents.harness.contract import ContractError, parse_result
from agents.virtual.faults import CORRUPT_MODES
from agents.virtual.testing import FleetHandle
from tests.virtual.helpers import lockdown, make_ipa, make_job, run_harness, stage_harness

pytestmark = pytest.mark.timeout(60)
MODEL = os.urandom(50_000)


def _harness_run(handle: FleetHandle, home: Path, tmp: Path, fault: str | None = None, wait_s: float = 5.0,
                 **params):
    udid = handle.udids[0]

    async def scenario():
        ld = await lockdown(udid, home)
        await stage_harness(ld, tmp, make_job(MODEL, iterations=20), MODEL)
        if fault:
            handle.inject_fault(udid, fault, count=1, **params)
        out = await run_harness(ld, wait_s=wait_s)
        await ld.close()
        return out

    return asyncio.run(scenario())


def test_unplug_drops_connections_and_replug_returns(one_device: FleetHandle, client_home: Path) -> None:
    udid = one_device.udids[0]

    async def scenario() -> None:
        ld = await lockdown(udid, client_home)
        one_device.inject_fault(udid, "unplug", duration_s=0.5)
        assert await usbmux.list_devices() == []
        with pytest.raises((ConnectionTerminatedError, ConnectionError, asyncio.IncompleteReadError, OSError)):
            await ld.service.send_recv_plist({"Request": "QueryType"})
        with pytest.raises(DeviceNotFoundError):
            await lockdown(udid, client_home)
        await asyncio.sleep(0.8)
        assert [d.serial for d in await usbmux.list_devices()] == [udid]
        ld2 = await lockdown(udid, client_home)
        assert ld2.paired
        await ld2.close()

    asyncio.run(scenario())


def test_harness_crash_exits_without_result(one_device: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    pid, raw, running = _harness_run(one_device, client_home, tmp_path, "harness_crash")
    assert pid > 0 and running == 0 and raw is None
    # one-shot: the next launch runs normally
    _, raw, _ = _harness_run(one_device, client_home, tmp_path)
    assert parse_result(raw)["status"] == "ok"


def test_hang_never_writes_and_keeps_running(one_device: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    pid, raw, running = _harness_run(one_device, client_home, tmp_path, "hang", wait_s=1.0)
    assert raw is None and running == pid
    udid = one_device.udids[0]
    one_device.call(lambda s: s.device(udid).kill(pid))  # the host's timeout path
    assert one_device.device(udid)["processes"] == []


def test_missing_result(one_device: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    _, raw, running = _harness_run(one_device, client_home, tmp_path, "missing_result")
    assert running == 0 and raw is None


@pytest.mark.parametrize("mode", CORRUPT_MODES)
def test_corrupt_result_fails_the_contract(one_device: FleetHandle, client_home: Path, tmp_path: Path,
                                           mode: str) -> None:
    _, raw, running = _harness_run(one_device, client_home, tmp_path, "corrupt_result", mode=mode)
    assert running == 0 and raw
    with pytest.raises(ContractError):
        parse_result(raw)


def test_slow_afc(one_device: FleetHandle, client_home: Path) -> None:
    udid = one_device.udids[0]

    async def timed() -> float:
        ld = await lockdown(udid, client_home)
        async with AfcService(ld) as afc:
            t = time.monotonic()
            for _ in range(3):
                await afc.listdir("/")
            took = time.monotonic() - t
        await ld.close()
        return took

    fast = asyncio.run(timed())
    one_device.inject_fault(udid, "slow_afc", delay_s=0.2)
    slow = asyncio.run(timed())
    assert fast < 0.3 and slow >= 0.6


def test_install_failure(one_device: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    udid = one_device.udids[0]
    one_device.inject_fault(udid, "install_failure", count=1)

    async def scenario() -> None:
        ld = await lockdown(udid, client_home)
        async with InstallationProxyService(ld) as ip:
            with pytest.raises(AppInstallError, match="simulated install failure"):
                await ip.install_from_local(make_ipa(tmp_path))
            await ip.install_from_local(make_ipa(tmp_path))  # count=1: the retry succeeds
        await ld.close()

    asyncio.run(scenario())


def test_low_battery_and_thermal_are_reported(one_device: FleetHandle, client_home: Path) -> None:
    udid = one_device.udids[0]
    one_device.inject_fault(udid, "low_battery", level=4)
    one_device.inject_fault(udid, "thermal_critical")

    async def scenario():
        ld = await lockdown(udid, client_home)
        domain = await ld.get_value(domain="com.apple.mobile.battery")
        async with DiagnosticsService(ld) as diag:
            battery = await diag.get_battery()
        await ld.close()
        return domain, battery

    domain, battery = asyncio.run(scenario())
    assert domain["BatteryCurrentCapacity"] == 4 and domain["BatteryIsCharging"] is False
    assert battery["CurrentCapacity"] == 4 and battery["IsCharging"] is False
    assert battery["Temperature"] >= 4500  # centi-degrees: a critical device is hot
    one_device.clear_faults(udid)
    assert one_device.device(udid)["thermal_state"] == "nominal"


def test_thermal_fault_shows_in_the_result(one_device: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    one_device.inject_fault(one_device.udids[0], "thermal", state="serious", duration_s=30)
    _, raw, _ = _harness_run(one_device, client_home, tmp_path)
    doc = parse_result(raw)
    assert doc["thermal_before"] == "serious" and doc["thermal_after"] in ("serious", "critical")


def test_not_paired_lockdown_refuses(one_device: FleetHandle, client_home: Path) -> None:
    udid = one_device.udids[0]

    async def scenario() -> None:
        ld = await lockdown(udid, client_home)  # a session opened before the fault
        one_device.inject_fault(udid, "not_paired")
        with pytest.raises((ConnectionTerminatedError, ConnectionError, asyncio.IncompleteReadError, OSError)):
            await ld.service.send_recv_plist({"Request": "QueryType"})
        refused = await lockdown(udid, client_home)
        assert refused.paired is False
        with pytest.raises(NotPairedError):
            await refused.start_lockdown_service("com.apple.afc")
        await refused.close()
        with pytest.raises(UserDeniedPairingError):
            await lockdown(udid, client_home, autopair=True)
        one_device.clear_faults(udid, "not_paired")
        again = await lockdown(udid, client_home)
        assert again.paired
        await again.close()

    asyncio.run(scenario())


def test_a_new_host_can_pair(one_device: FleetHandle, client_home: Path) -> None:
    """Pair (autopair) from a host the device does not know yet: the record is saved to usbmuxd."""
    udid = one_device.udids[0]
    one_device.call(lambda s: setattr(s.device(udid), "pair_record", None))

    async def scenario() -> None:
        ld = await lockdown(udid, client_home, autopair=True)
        assert ld.paired
        async with AfcService(ld) as afc:
            assert await afc.listdir("/")
        await ld.close()

    asyncio.run(scenario())
    record = one_device.call(lambda s: s.device(udid).pair_record)
    assert record is not None and record["HostID"] in one_device.call(lambda s: s.device(udid).trusted_hosts)

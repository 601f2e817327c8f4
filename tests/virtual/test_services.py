"""pymobiledevice3's own service clients, unchanged, against the virtual device (TLS on and off)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pymobiledevice3 import usbmux
from pymobiledevice3.exceptions import AfcFileNotFoundError, AppNotInstalledError, InvalidServiceError
from pymobiledevice3.services.afc import AfcService
from pymobiledevice3.services.diagnostics import DiagnosticsService
from pymobiledevice3.services.house_arrest import HouseArrestService
from pymobiledevice3.services.installation_proxy import InstallationProxyService

from agents.virtual.device import HARNESS_BUNDLE_ID
from agents.virtual.testing import FleetHandle
from tests.virtual.helpers import HARNESS_HASH, lockdown, make_ipa

pytestmark = pytest.mark.timeout(60)


def test_session_and_service_tls_follow_the_device(fleet: FleetHandle, client_home: Path) -> None:
    tls = fleet.call(lambda s: next(iter(s.devices.values())).tls)

    async def scenario() -> None:
        ld = await lockdown(fleet.udids[0], client_home)
        assert ld.paired
        assert (ld.service.writer.get_extra_info("ssl_object") is not None) is tls
        attrs = await ld.get_service_connection_attributes("com.apple.afc")
        assert attrs["EnableServiceSSL"] is tls
        async with AfcService(ld) as afc:
            assert (afc.service.writer.get_extra_info("ssl_object") is not None) is tls
            assert "PublicStaging" in await afc.listdir("/")
        await ld.close()

    asyncio.run(scenario())


def test_lockdown_values_and_battery_domain(one_device: FleetHandle, client_home: Path) -> None:
    async def scenario() -> None:
        ld = await lockdown(one_device.udids[0], client_home)
        assert ld.all_values["UniqueDeviceID"] == one_device.udids[0]
        assert await ld.get_value(key="ProductType") == "iPhone14,5"
        battery = await ld.get_value(domain="com.apple.mobile.battery")
        assert battery["BatteryCurrentCapacity"] == 87 and battery["BatteryIsCharging"] is True
        assert await ld.get_developer_mode_status() is True
        with pytest.raises(InvalidServiceError):
            await ld.start_lockdown_service("com.apple.no.such.service")
        await ld.close()

    asyncio.run(scenario())


def test_afc_file_operations(fleet: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    big = os.urandom(5 * 1024 * 1024 + 17)  # over AFC's 4 MB chunk: streamed in several reads/writes

    async def scenario() -> None:
        ld = await lockdown(fleet.udids[1], client_home)
        async with AfcService(ld) as afc:
            await afc.makedirs("/Downloads/a/b")
            await afc.set_file_contents("/Downloads/a/b/x.txt", b"hello")
            assert await afc.listdir("/Downloads/a/b") == ["x.txt"]
            st = await afc.stat("/Downloads/a/b/x.txt")
            assert st["st_size"] == 5 and st["st_ifmt"] == "S_IFREG" and st["st_nlink"] == 1
            assert (await afc.stat("/Downloads/a"))["st_ifmt"] == "S_IFDIR"
            await afc.rename("/Downloads/a/b/x.txt", "/Downloads/y.txt")
            assert await afc.get_file_contents("/Downloads/y.txt") == b"hello"
            (tmp_path / "big.bin").write_bytes(big)
            await afc.push(str(tmp_path / "big.bin"), "/Downloads/big.bin", progress_bar=False)
            await afc.pull("/Downloads/big.bin", str(tmp_path / "back.bin"), progress_bar=False)
            assert (tmp_path / "back.bin").read_bytes() == big
            assert await afc.rm("/Downloads/a") == []
            assert not await afc.exists("/Downloads/a")
            with pytest.raises(AfcFileNotFoundError):
                await afc.stat("/Downloads/missing")
            info = await afc.get_device_info()
            assert info["Model"] == "iPhone14,5"
        await ld.close()

    asyncio.run(scenario())


def test_install_browse_lookup_uninstall(fleet: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    ipa = make_ipa(tmp_path, version="42")

    async def scenario() -> None:
        ld = await lockdown(fleet.udids[2], client_home)
        async with InstallationProxyService(ld) as ip:
            await ip.install_from_local(ipa)
            apps = await ip.get_apps(application_type="User")
            assert list(apps) == [HARNESS_BUNDLE_ID]
            assert apps[HARNESS_BUNDLE_ID]["CFBundleVersion"] == "42"
            assert apps[HARNESS_BUNDLE_ID]["BenchfarmHarnessHash"] == HARNESS_HASH
            browsed = {a["CFBundleIdentifier"]: a for a in await ip.browse()}
            assert browsed[HARNESS_BUNDLE_ID]["BenchfarmHarnessHash"] == HARNESS_HASH
            assert "com.apple.mobilesafari" in browsed  # system apps are there too
            only = await ip.browse(attributes=["CFBundleIdentifier", "CFBundleVersion"])
            assert all(set(a) <= {"CFBundleIdentifier", "CFBundleVersion"} for a in only)
            # an upgrade replaces the version and keeps the container
            await ip.install_from_local(make_ipa(tmp_path, version="43"))
            looked = await ip.get_apps(bundle_identifiers=[HARNESS_BUNDLE_ID])
            assert looked[HARNESS_BUNDLE_ID]["CFBundleVersion"] == "43"
            await ip.uninstall(HARNESS_BUNDLE_ID)
            assert HARNESS_BUNDLE_ID not in await ip.get_apps()
        async with AfcService(ld) as afc:  # the client cleaned its staging upload
            assert await afc.listdir("/PublicStaging/pymobiledevice3") == []
        await ld.close()

    asyncio.run(scenario())


def test_house_arrest_push_pull(fleet: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.pte"
    model.write_bytes(os.urandom(300_000))

    async def scenario() -> None:
        ld = await lockdown(fleet.udids[0], client_home)
        async with InstallationProxyService(ld) as ip:
            await ip.install_from_local(make_ipa(tmp_path))
        ha = await HouseArrestService.create(ld, HARNESS_BUNDLE_ID, documents_only=True)
        async with ha:
            await ha.push(str(model), "/Documents/model.pte", progress_bar=False)
            await ha.set_file_contents("/Documents/job.json", b"{}")
            assert sorted(await ha.listdir("/Documents")) == ["job.json", "model.pte"]
            await ha.pull("/Documents/model.pte", str(tmp_path / "pulled.pte"), progress_bar=False)
            await ha.rm("/Documents/job.json")
        assert (tmp_path / "pulled.pte").read_bytes() == model.read_bytes()
        with pytest.raises(AppNotInstalledError):
            await HouseArrestService.create(ld, "com.example.absent")
        await ld.close()

    asyncio.run(scenario())
    # the same bytes are what the simulated harness will find in its container
    assert fleet.read_file(fleet.udids[0], "Documents/model.pte", HARNESS_BUNDLE_ID) == model.read_bytes()


def test_diagnostics_battery(fleet: FleetHandle, client_home: Path) -> None:
    async def scenario() -> dict:
        ld = await lockdown(fleet.udids[0], client_home)
        async with DiagnosticsService(ld) as diag:
            battery = await diag.get_battery()
        await ld.close()
        return battery

    battery = asyncio.run(scenario())
    assert battery["CurrentCapacity"] == 87
    assert battery["IsCharging"] is True
    assert 2500 <= battery["Temperature"] <= 3500  # centi-degrees, nominal
    assert {"Voltage", "CycleCount", "DesignCapacity", "ExternalConnected"} <= set(battery)


def test_listen_reports_unplug_and_replug(one_device: FleetHandle) -> None:
    udid = one_device.udids[0]

    async def scenario() -> None:
        mux = await usbmux.create_mux()
        try:
            await mux.listen()
            await asyncio.wait_for(mux.receive_device_state_update(), 5)  # the initial Attached
            assert [d.serial for d in mux.devices] == [udid]
            one_device.unplug(udid)
            await asyncio.wait_for(mux.receive_device_state_update(), 5)
            assert mux.devices == []
            assert await usbmux.list_devices() == []
            one_device.plug(udid)
            await asyncio.wait_for(mux.receive_device_state_update(), 5)
            assert [d.serial for d in mux.devices] == [udid]
        finally:
            await mux.close()

    asyncio.run(scenario())


def test_many_clients_at_once(fleet: FleetHandle, client_home: Path) -> None:
    """Sessions to every device in parallel, several AFC connections each: one event loop serves all."""
    payload = os.urandom(200_000)

    async def one(udid: str, n: int) -> bytes:
        ld = await lockdown(udid, client_home)
        async with AfcService(ld) as afc:
            await afc.set_file_contents(f"/Downloads/{n}.bin", payload)
            data = await afc.get_file_contents(f"/Downloads/{n}.bin")
        await ld.close()
        return data

    async def scenario() -> list[bytes]:
        return await asyncio.gather(*(one(u, n) for u in fleet.udids for n in range(4)))

    assert all(d == payload for d in asyncio.run(scenario()))

"""The iOS 17.4+ developer path of the virtual device, driven by unchanged pymobiledevice3:
CoreDeviceProxy over lockdown, the userspace TCP/IP stack over it, RSD (RemoteXPC over HTTP/2)
on the device's tunnel address, DVT and lockdown shims behind it. Real sockets throughout.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pymobiledevice3.exceptions import ConnectionTerminatedError, InvalidServiceError, PasswordRequiredError
from pymobiledevice3.remote.userspace_tunnel import UserspaceRsdTunnel
from pymobiledevice3.services.afc import AfcService
from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl

from agents.virtual.testing import FleetHandle, running_fleet
from tests.virtual.conftest import A15, A17, pmd, spec

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def ios26(client_home: Path, monkeypatch: pytest.MonkeyPatch):
    """An iPhone 15 Pro on iOS 26.1 (TLS on) and an iPhone 13 kept on iOS 16.6."""
    with running_fleet(spec((A17, "26.1"), (A15, "16.6"))) as handle:
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", handle.usbmux_address)
        yield handle


def test_userspace_tunnel_rsd_dvt_and_shims(ios26: FleetHandle) -> None:
    udid = ios26.udids[0]

    async def scenario() -> dict:
        async with UserspaceRsdTunnel(serial=udid, autopair=False) as rsd:
            seen: dict = {"info": rsd.peer_info, "values": rsd.all_values, "address": rsd.service.address}
            async with DvtProvider(rsd) as dvt, ProcessControl(dvt) as pc:
                pid = await pc.launch("com.apple.mobilesafari", arguments=["--bench", "1"],
                                      environment={"BENCHFARM_X": "y"})
                seen["running"] = ios26.call(lambda s: {p.pid: (p.arguments, p.environment)
                                                         for p in s.device(udid).processes.values()})
                seen["pid"] = pid
                seen["pid_query"] = await pc.process_identifier_for_bundle_identifier("com.apple.mobilesafari")
                await pc.kill(pid)
                await asyncio.sleep(0.1)
                seen["after_kill"] = ios26.call(lambda s: sorted(s.device(udid).processes))
            # a port nothing listens on: the device answers the SYN with a RST (connection refused)
            closed = await rsd.create_service_connection(1)
            with pytest.raises(ConnectionTerminatedError):
                await closed.recvall(1)
            await closed.close()
            async with AfcService(rsd) as afc:  # com.apple.afc.shim.remote with RSDCheckin
                await afc.set_file_contents("/Downloads/over-rsd.txt", b"through the tunnel")
                seen["afc"] = await afc.get_file_contents("/Downloads/over-rsd.txt")
        return seen

    seen = asyncio.run(scenario())
    props, services = seen["info"]["Properties"], seen["info"]["Services"]
    assert (props["UniqueDeviceID"], props["ProductType"], props["OSVersion"], props["BuildVersion"]) == (
        udid, A17, "26.1", "23B85")
    assert seen["values"]["ProductVersion"] == "26.1"  # the remote lockdown (RSDCheckin) answered
    for name in ("com.apple.instruments.dtservicehub", "com.apple.mobile.lockdown.remote.trusted",
                 "com.apple.mobile.installation_proxy.shim.remote", "com.apple.mobile.house_arrest.shim.remote",
                 "com.apple.afc.shim.remote"):
        assert int(services[name]["Port"]) > 1024, name
    assert seen["address"][0].startswith("fd") and seen["address"][1] == 58783
    assert seen["running"][seen["pid"]] == (["--bench", "1"], {"BENCHFARM_X": "y"})
    assert seen["pid_query"] == seen["pid"] and seen["pid"] not in seen["after_kill"]
    assert seen["afc"] == b"through the tunnel"
    assert ios26.read_file(udid, "Downloads/over-rsd.txt") == b"through the tunnel"


def test_cli_rsd_info_over_userspace_tunnel(ios26: FleetHandle) -> None:
    udid = ios26.udids[0]
    out = pmd("remote", "rsd-info", "--userspace", env_extra={"PYMOBILEDEVICE3_UDID": udid})
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["Properties"]["OSVersion"] == "26.1" and "com.apple.instruments.dtservicehub" in info["Services"]


def test_which_version_offers_which_path(ios26: FleetHandle, client_home: Path) -> None:
    """iOS 26: no DVT through lockdownd (as on a phone), CoreDeviceProxy instead; iOS 16: the reverse."""
    from tests.virtual.helpers import lockdown

    new, old = ios26.udids

    async def scenario() -> None:
        ld = await lockdown(new, client_home)
        with pytest.raises(InvalidServiceError):
            await ld.start_lockdown_service("com.apple.instruments.remoteserver.DVTSecureSocketProxy")
        await ld.close()
        ld = await lockdown(old, client_home)
        with pytest.raises(InvalidServiceError):
            await ld.start_lockdown_service("com.apple.internal.devicecompute.CoreDeviceProxy")
        await ld.close()

    asyncio.run(scenario())


def test_refused_proxy_and_dropped_tunnel(ios26: FleetHandle) -> None:
    udid = ios26.udids[0]
    ios26.inject_fault(udid, "core_device_proxy_refused", count=1)

    async def scenario() -> tuple[str, str]:
        with pytest.raises(PasswordRequiredError):
            await UserspaceRsdTunnel(serial=udid, autopair=False, remotepairing_fallback=False).aopen()
        tunnel = UserspaceRsdTunnel(serial=udid, autopair=False, remotepairing_fallback=False)
        rsd = await tunnel.aopen()  # one-shot: the next start works
        first = rsd.service.address[0]
        assert len(ios26.call(lambda s: s.device(udid).tunnels)) == 1
        ios26.inject_fault(udid, "tunnel_drop")
        for _ in range(100):  # the tunnel's transport watcher tears the dead tunnel down
            if tunnel.rsd is None:
                break
            await asyncio.sleep(0.05)
        assert tunnel.rsd is None
        await tunnel.aclose()
        ios26.inject_fault(udid, "reboot", duration_s=0.3)
        await asyncio.sleep(0.6)
        async with UserspaceRsdTunnel(serial=udid, autopair=False) as again:
            return first, again.service.address[0]

    before, after = asyncio.run(scenario())
    assert before != after  # a reboot brings the device back on a new tunnel address

"""The developer-facing device services, driven by pymobiledevice3's own CLI and library, unchanged.

DVT (proclist, ls, sysmon, energy, refused channels, isPidDebuggable), os_trace_relay
(``processes ps``, the binary log stream), syslog_relay (``syslog live``), crash reports
(``crash ls`` after a harness crash, parsed by pycrashreport), mobile_image_mounter
(``mounter list``, lookup, upload + mount) and the Developer Mode / developer image states.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymobiledevice3.dtx import DTXNsError
from pymobiledevice3.exceptions import (
    AfcException,
    AfcFileNotFoundError,
    DeveloperModeIsNotEnabledError,
    DvtDirListError,
    InvalidServiceError,
)
from pymobiledevice3.services.afc import AfcError, AfcService
from pymobiledevice3.services.crash_reports import CrashReportsManager
from pymobiledevice3.services.diagnostics import DiagnosticsService
from pymobiledevice3.services.dvt.instruments.device_info import DeviceInfo
from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
from pymobiledevice3.services.dvt.instruments.energy_monitor import EnergyMonitor
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl
from pymobiledevice3.services.dvt.instruments.sysmontap import Sysmontap
from pymobiledevice3.services.mobile_image_mounter import DeveloperDiskImageMounter, MobileImageMounterService
from pymobiledevice3.services.os_trace import OsTraceService
from pymobiledevice3.services.syslog import SyslogService

from agents.virtual.device import HARNESS_BUNDLE_ID
from agents.virtual.testing import FleetHandle, running_fleet
from agents.virtual.vfs import MEDIA_ROOT_DIRS
from tests.virtual.conftest import A15, A17, pmd, spec
from tests.virtual.helpers import developer_services, lockdown, make_job, stage_harness

pytestmark = pytest.mark.timeout(90)
MODEL = os.urandom(20_000)


# an iPhone 13 kept on iOS 16 and an iPhone 15 Pro on iOS 26 (an A17 Pro never ran iOS 16)
@pytest.fixture(params=[(A15, "16.6"), (A17, "26.0")], ids=["ios16", "ios26"])
def device(request: pytest.FixtureRequest, client_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetHandle]:
    with running_fleet(spec(request.param)) as handle:
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", handle.usbmux_address)
        yield handle


def _launch(udid: str, home: Path, bundle_id: str = "com.apple.mobilesafari") -> int:
    async def go() -> int:
        ld = await lockdown(udid, home)
        async with DvtProvider(ld) as dvt, ProcessControl(dvt) as pc:
            pid = await pc.launch(bundle_id)
        await ld.close()
        return pid

    return asyncio.run(go())


def _first_lines(args: list[str], want: int, timeout: float = 30.0, poke=None) -> list[str]:  # noqa: ANN001
    """Start a streaming CLI command, return its first ``want`` stdout lines, then stop it."""
    env = {**os.environ, "PYMOBILEDEVICE3_NO_COLOR": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pymobiledevice3", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line for line in proc.stdout if line.strip()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while len(lines) < want and time.monotonic() < deadline and proc.poll() is None:
            if poke is not None:
                poke()
            time.sleep(0.2)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        reader.join(5)
    assert len(lines) >= want, f"{args}: {len(lines)} lines within {timeout} s; stderr: {err[-2000:]}"
    return lines[:want]


def test_dvt_proclist_ls_and_isPidDebuggable(one_device: FleetHandle, client_home: Path) -> None:
    udid = one_device.udids[0]
    safari = _launch(udid, client_home)
    procs = json.loads(pmd("developer", "dvt", "proclist", "--udid", udid).stdout)
    by_pid = {p["pid"]: p for p in procs}
    assert by_pid[1]["name"] == "launchd" and not by_pid[1]["isApplication"]
    assert by_pid[safari]["isApplication"] and by_pid[safari]["realAppName"].endswith("/MobileSafari")
    assert "startDate" in by_pid[safari]

    out = pmd("developer", "dvt", "ls", "/", "--udid", udid)
    assert out.returncode == 0, out.stderr
    assert {"/private", "/usr", "/var", "/Developer"} <= set(out.stdout.split())

    async def debuggable() -> tuple[bool, bool]:
        ld = await lockdown(udid, client_home)
        await stage_harness(ld, client_home, make_job(MODEL), MODEL)
        async with DvtProvider(ld) as dvt, ProcessControl(dvt) as pc, DeviceInfo(dvt) as info:
            assert "DCIM" in await info.ls("/private/var/mobile/Media")  # the AFC media tree
            with pytest.raises(DvtDirListError):
                await info.ls("/no/such/dir")
            harness = await pc.launch(HARNESS_BUNDLE_ID)
            answers = (await pc.service.invoke("isPidDebuggable:", safari),
                       await pc.service.invoke("isPidDebuggable:", harness))
        await ld.close()
        return answers

    # a release build of iOS: no debugger on system apps, yes on a development-signed one
    assert asyncio.run(debuggable()) == (False, True)


def test_sysmon_single_and_energy_cli(one_device: FleetHandle, client_home: Path) -> None:
    udid = one_device.udids[0]
    safari = _launch(udid, client_home)
    out = pmd("developer", "dvt", "sysmon", "process", "single", "--udid", udid)
    assert out.returncode == 0, out.stderr
    rows = {r["pid"]: r for r in json.loads(out.stdout)}
    assert rows[safari]["name"] == "MobileSafari" and rows[safari]["physFootprint"] > 1_000_000
    assert rows[safari]["execName"].endswith("/MobileSafari") and "cpuUsage" in rows[safari]
    assert rows[1]["name"] == "launchd"

    (line,) = _first_lines(["developer", "dvt", "energy", str(safari), "--udid", udid], 1)
    sample = json.loads(line)[str(safari)]
    assert sample["energy.cost"] >= sample["energy.cpu.cost"] >= 0 and sample["benchfarm.simulated"] is True


def test_unknown_dvt_channel_is_refused_at_once(one_device: FleetHandle, client_home: Path) -> None:
    async def go() -> float:
        ld = await lockdown(one_device.udids[0], client_home)
        async with DvtProvider(ld) as dvt:
            t0 = time.monotonic()
            with pytest.raises(DTXNsError, match="Unable to find a service"):
                await asyncio.wait_for(dvt.dtx.open_channel("com.apple.instruments.server.services.nonesuch"), 10)
            elapsed = time.monotonic() - t0
            # the connection stays usable after the refusal
            async with ProcessControl(dvt) as pc:
                assert await pc.process_identifier_for_bundle_identifier("com.apple.mobilesafari") == 0
        await ld.close()
        return elapsed

    assert asyncio.run(go()) < 5  # an answer, not the client's own timeout


def test_processes_ps_syslog_live_and_os_trace(device: FleetHandle, client_home: Path) -> None:
    udid = device.udids[0]
    payload = json.loads(pmd("processes", "ps", "--udid", udid).stdout)
    assert payload["1"]["ProcessName"] == "launchd" and payload["104"]["ProcessName"] == "SpringBoard"

    def poke() -> None:
        device.call(lambda s: s.device(udid).emit_output(104, "benchfarm-probe line"))

    lines = _first_lines(["syslog", "live", "--udid", udid], 1, poke=poke)
    assert "SpringBoard{SpringBoard}[104] <NOTICE>: benchfarm-probe line" in lines[0]  # the CLI reads os_trace

    async def trace() -> tuple[int, str, str, str]:
        ld = await lockdown(udid, client_home)
        stream = OsTraceService(ld).syslog(pid=104).__aiter__()
        first = asyncio.ensure_future(stream.__anext__())
        for _ in range(50):
            if first.done():
                break
            device.call(lambda s: s.device(udid).emit_output(31, "from logd: filtered out"))
            poke()
            await asyncio.sleep(0.1)
        entry = await asyncio.wait_for(first, 10)
        await stream.aclose()
        relay = SyslogService(ld).watch().__aiter__()  # the text relay, one line each
        first = asyncio.ensure_future(relay.__anext__())
        while not first.done():
            poke()
            await asyncio.sleep(0.1)
        line = await first
        await relay.aclose()
        await ld.close()
        return entry.pid, entry.filename, entry.message, line

    pid, filename, message, line = asyncio.run(trace())
    assert (pid, message) == (104, "benchfarm-probe line") and filename.endswith("/SpringBoard")
    assert line.endswith("SpringBoard[104] <Notice>: benchfarm-probe line")


def test_harness_crash_leaves_an_ips_report(device: FleetHandle, client_home: Path) -> None:
    udid = device.udids[0]

    async def crash() -> int:
        ld = await lockdown(udid, client_home)
        await stage_harness(ld, client_home, make_job(MODEL), MODEL)
        device.inject_fault(udid, "harness_crash", count=1)
        pid = -1
        if int(device.device(udid)["product_version"].split(".")[0]) < 17:
            async with DvtProvider(ld) as dvt, ProcessControl(dvt) as pc:
                pid = await pc.launch(HARNESS_BUNDLE_ID)
        else:  # no DVT over lockdown on iOS 17+: start it on the device, as a user tapping the icon
            pid = device.call(lambda s: s.device(udid).launch_app(HARNESS_BUNDLE_ID))
        await ld.close()
        return pid

    pid = asyncio.run(crash())

    async def listed() -> list[str]:
        ld = await lockdown(udid, client_home)
        async with CrashReportsManager(ld) as crash:
            for _ in range(50):  # ReportCrash writes the report just after the process died
                names = [n for n in await crash.ls("/") if n.endswith(".ips")]
                if names:
                    break
                await asyncio.sleep(0.1)
        await ld.close()
        return names

    (report,) = asyncio.run(listed())
    assert report.lstrip("/").startswith("Harness-")  # <CFBundleExecutable>-<date>.ips, as ReportCrash names it
    assert report in pmd("crash", "ls", "--udid", udid).stdout.split()

    async def parse():  # noqa: ANN202
        ld = await lockdown(udid, client_home)
        async with CrashReportsManager(ld) as crash:
            await crash.flush()
            parsed = await crash.parse(report)
        await ld.close()
        return parsed

    parsed = asyncio.run(parse())  # pycrashreport, as `pymobiledevice3 crash parse` does
    assert parsed.name == "Harness" and parsed.bug_type.value == "309" and parsed.faulting_thread == 0
    assert parsed.exception_type == "EXC_BAD_ACCESS" and "Method::execute" in parsed.frames[0].symbol
    assert f"pid: {pid}" in str(parsed).lower() or str(pid) in str(parsed)  # the CLI's rendering works


def test_mounter_list_lookup_and_developer_states(device: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    udid = device.udids[0]
    ios = device.device(udid)["product_version"]
    kind = "Personalized" if int(ios.split(".")[0]) >= 17 else "Developer"
    out = pmd("mounter", "list", "--udid", udid)
    assert out.returncode == 0, out.stderr
    assert [i["DiskImageType"] for i in json.loads(out.stdout)] == [kind]

    device.inject_fault(udid, "ddi_missing")

    async def states() -> None:
        ld = await lockdown(udid, client_home)
        async with MobileImageMounterService(ld) as mounter:
            assert not await mounter.is_image_mounted(kind) and await mounter.list_images() == []
        if kind == "Developer":
            with pytest.raises(InvalidServiceError):  # no image: lockdownd refuses the instruments server
                await DvtProvider(ld).connect()
            image, sig = tmp_path / "DeveloperDiskImage.dmg", tmp_path / "DeveloperDiskImage.dmg.signature"
            image.write_bytes(os.urandom(4096))
            sig.write_bytes(os.urandom(128))
            async with DeveloperDiskImageMounter(ld) as mounter:
                await mounter.mount(image, sig)  # upload + mount, exactly as `mounter mount` does
                assert await mounter.lookup_image("Developer") == sig.read_bytes()
            async with DvtProvider(ld) as dvt, ProcessControl(dvt) as pc:  # DVT is back
                assert await pc.process_identifier_for_bundle_identifier("com.apple.mobilesafari") == 0
        device.inject_fault(udid, "developer_mode_off")
        assert await ld.get_developer_mode_status() is False
        async with MobileImageMounterService(ld) as mounter:
            assert await mounter.query_developer_mode_status() is False
        if kind == "Developer":
            with pytest.raises(DeveloperModeIsNotEnabledError):
                async with DeveloperDiskImageMounter(ld) as mounter:
                    await mounter.mount(image, sig)
        device.clear_faults(udid, "developer_mode_off")
        assert await ld.get_developer_mode_status() is True
        await ld.close()

    asyncio.run(states())


def test_diagnostics_info_and_ioregistry(device: FleetHandle, client_home: Path) -> None:
    async def go() -> tuple:
        ld = await lockdown(device.udids[0], client_home)
        async with DiagnosticsService(ld) as diag:
            answers = (await diag.info(), await diag.ioregistry(plane="IOPower"), await diag.get_battery(),
                       await diag.get_wifi())
        await ld.close()
        return answers

    info, plane, battery, wifi = asyncio.run(go())
    assert set(info) == {"GasGauge", "HDMI", "NAND", "WiFi"}
    assert info["GasGauge"]["Status"] == "Success" and info["GasGauge"]["DesignCapacity"] > 0
    assert plane["IORegistryEntryName"] == "Root" and plane["IORegistryEntryChildren"]
    assert {"CurrentCapacity", "Temperature", "IsCharging", "InstantAmperage"} <= set(battery)
    assert wifi["BSD Name"] == "en0"


def test_afc_answers_as_ios(one_device: FleetHandle, client_home: Path) -> None:
    async def go() -> None:
        ld = await lockdown(one_device.udids[0], client_home)
        async with AfcService(ld) as afc:
            assert set(MEDIA_ROOT_DIRS) <= set(await afc.listdir("/"))
            await afc.makedirs("/Downloads/bf")
            for name in ("a", "b", "c"):
                await afc.set_file_contents(f"/Downloads/bf/{name}", b"x" * 5000)
            st = await afc.stat("/Downloads/bf")
            assert (st["st_size"], st["st_nlink"], st["st_blocks"]) == (32 * 5, 5, 0)  # APFS: 32 B per entry
            assert (await afc.stat("/Downloads/bf/a"))["st_blocks"] == 16  # two 4 KiB blocks, in 512 B units
            with pytest.raises(AfcFileNotFoundError) as through_file:
                await afc.stat("/Downloads/bf/a/deeper")
            assert through_file.value.status == AfcError.OBJECT_NOT_FOUND
            with pytest.raises(AfcException) as read_dir:
                await afc.listdir("/Downloads/bf/a")
            assert read_dir.value.status == AfcError.READ_ERROR
        await ld.close()

    asyncio.run(go())


def test_ios26_serves_them_over_the_tunnel(client_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """iOS 17+: DVT (dtservicehub) and the shims (crash reports, os_trace, the mounter) over RSD."""
    with running_fleet(spec((A17, "26.1"))) as handle:
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", handle.usbmux_address)
        udid = handle.udids[0]

        async def go() -> None:
            ld = await lockdown(udid, client_home)
            await stage_harness(ld, client_home, make_job(MODEL), MODEL)
            async with developer_services(ld) as rsd:
                async with DvtProvider(rsd) as dvt, ProcessControl(dvt) as pc, DeviceInfo(dvt) as info:
                    pid = await pc.launch("com.apple.mobilesafari")
                    assert any(p["pid"] == pid for p in await info.proclist())
                    assert await pc.service.invoke("isPidDebuggable:", pid) is False  # a system app
                    async with await Sysmontap.create(dvt, interval=100) as sysmon:
                        async for procs in sysmon.iter_processes():
                            assert any(p["pid"] == 1 and p["name"] == "launchd" for p in procs)
                            break
                    async with EnergyMonitor(dvt, [pid]) as energy:
                        async for sample in energy:
                            assert sample[pid]["energy.cost"] >= 0
                            break
                    with pytest.raises(DTXNsError):
                        await dvt.dtx.open_channel("com.apple.instruments.server.services.nonesuch")
                assert (await OsTraceService(rsd).get_pid_list())["Payload"]["1"]["ProcessName"] == "launchd"
                async with MobileImageMounterService(rsd) as mounter:
                    assert [i["DiskImageType"] for i in await mounter.list_images()] == ["Personalized"]
                handle.inject_fault(udid, "harness_crash", count=1)
                async with DvtProvider(rsd) as dvt, ProcessControl(dvt) as pc:
                    await pc.launch(HARNESS_BUNDLE_ID)
                async with CrashReportsManager(rsd) as crash:
                    for _ in range(50):
                        if [n for n in await crash.ls("/") if n.endswith(".ips")]:
                            break
                        await asyncio.sleep(0.1)
                    (report,) = [n for n in await crash.ls("/") if n.endswith(".ips")]
                    assert (await crash.parse(report)).exception_type == "EXC_BAD_ACCESS"
            await ld.close()

        asyncio.run(go())

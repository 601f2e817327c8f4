"""deviceinfo channel (``com.apple.instruments.server.services.deviceinfo``): what Instruments asks first.

Answers the selectors pymobiledevice3's ``DeviceInfo`` sends (proclist, ``dvt ls``, device
information, sysmon attribute lists) from the virtual device's process table and file trees.
The root file system is a small fixed skeleton; ``/private/var/mobile/Media`` is the device's
real media tree (what AFC serves), so a file pushed over AFC shows up in ``dvt ls``.
"""

from __future__ import annotations

import posixpath
import time
from typing import Any

from bpylist2.archive_types import timestamp
from pymobiledevice3.dtx import DTXService, NSError, dtx_on_invoke

from agents.virtual.instruments import processes as ptable
from agents.virtual.vfs import Dir, FsError, Tree

IDENTIFIER = "com.apple.instruments.server.services.deviceinfo"
MEDIA = "/private/var/mobile/Media"
ROOT_SKELETON = (
    "Applications", "Developer", "Library/Caches", "System/Library/CoreServices", "bin", "cores", "dev", "etc",
    "private/etc", "private/var/containers/Bundle/Application", "private/var/mobile/Containers/Data/Application",
    "private/var/mobile/Library/Logs/CrashReporter", "private/var/tmp", "sbin", "tmp", "usr/bin", "usr/lib",
    "usr/libexec", "var",
)
# The attribute names sysmontap accepts (a subset of what iOS 16 lists; each one is simulated).
SYSMON_PROCESS_ATTRIBUTES = (
    "pid", "ppid", "name", "uid", "cpuUsage", "cpuTotalUser", "cpuTotalSystem", "physFootprint",
    "memResidentSize", "memVirtualSize", "memAnon", "threadCount", "procAge", "startAbsTime",
    "diskBytesRead", "diskBytesWritten", "faults", "ctxSwitch",
)
SYSMON_SYSTEM_ATTRIBUTES = (
    "vmFreeCount", "vmActiveCount", "vmWireCount", "vmCompressorPageCount", "physMemSize", "threadCount",
    "diskBytesRead", "diskBytesWritten", "netBytesIn", "netBytesOut",
)
# Mach absolute time ticks at 24 MHz on A-series chips (timebase 125/3 ns per tick).
MACH_TIMEBASE = (125, 3)
NSCOCOA_NO_SUCH_FILE = 260


def mach_ticks(seconds: float) -> int:
    numer, denom = MACH_TIMEBASE
    return int(seconds * 1e9 * denom / numer)


def root_tree(device: Any) -> Tree:
    tree = Tree()
    for d in ROOT_SKELETON:
        tree.makedirs(d)
    tree.lookup("private/var/mobile").children["Media"] = device.media.root  # type: ignore[attr-defined]
    return tree


def list_directory(device: Any, path: str) -> list[str] | None:
    """Entry names under ``path`` (absolute, as on the device); None when it is not a directory."""
    try:
        node = root_tree(device).lookup(posixpath.normpath(path))
    except FsError:
        return None
    return sorted(node.children) if isinstance(node, Dir) else None


def hardware_information(device: Any) -> dict[str, Any]:
    cores = 8 if device.product_type.startswith("iPad") else 6
    return {
        "numberOfPhysicalCpus": cores, "numberOfCpus": cores, "hwCPUtype": 16777228, "hwCPUsubtype": 2,
        "hwCPU64BitCapable": 1, "speedOfCpus": 0, "ProcessorTraceState": 0,
        "HardwareModel": device.hardware_model.upper(), "ProductType": device.product_type,
        "cpuArchitecture": "arm64e", "BenchfarmSimulated": True,
    }


def network_information() -> dict[str, str]:
    return {"lo0": "Loopback", "en0": "Wi-Fi", "en2": "Ethernet Adaptor (en2)", "pdp_ip0": "Cellular (pdp_ip0)",
            "awdl0": "Apple Wireless Direct Link", "llw0": "Low Latency WLAN", "anpi0": "USB Ethernet (anpi0)"}


class DeviceInfoDevice(DTXService):
    """Device side of the deviceinfo channel."""

    IDENTIFIER = IDENTIFIER

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._device = ctx["device"]

    @dtx_on_invoke("runningProcesses")
    async def _running(self) -> list[dict[str, Any]]:
        return [{"pid": p.pid, "name": p.name, "realAppName": p.path, "isApplication": p.is_application,
                 "startDate": timestamp(p.started)} for p in ptable.processes(self._device)]

    @dtx_on_invoke("directoryListingForPath:")
    async def _ls(self, path: Any) -> Any:
        names = list_directory(self._device, str(path))
        if names is None:
            return NSError(NSCOCOA_NO_SUCH_FILE, "NSCocoaErrorDomain",
                           {"NSLocalizedDescription": f"The folder “{posixpath.basename(str(path))}” doesn’t exist."})
        return names

    @dtx_on_invoke("execnameForPid:")
    async def _execname(self, pid: Any) -> Any:
        proc = ptable.find(self._device, int(pid))
        return proc.path if proc else None

    @dtx_on_invoke("isRunningPid:")
    async def _is_running(self, pid: Any) -> bool:
        return ptable.find(self._device, int(pid)) is not None

    @dtx_on_invoke("nameForUID:")
    async def _uid_name(self, uid: Any) -> str:
        return {0: "root", 501: "mobile"}.get(int(uid), str(int(uid)))

    @dtx_on_invoke("nameForGID:")
    async def _gid_name(self, gid: Any) -> str:
        return {0: "wheel", 501: "mobile"}.get(int(gid), str(int(gid)))

    @dtx_on_invoke("hardwareInformation")
    async def _hardware(self) -> dict[str, Any]:
        return hardware_information(self._device)

    @dtx_on_invoke("networkInformation")
    async def _network(self) -> dict[str, str]:
        return network_information()

    @dtx_on_invoke("systemInformation")
    async def _system(self) -> dict[str, Any]:
        v = self._device.lockdown_values()
        return {"ProductName": v["ProductName"], "ProductVersion": v["ProductVersion"],
                "BuildVersion": v["BuildVersion"], "DeviceName": v["DeviceName"], "BenchfarmSimulated": True}

    @dtx_on_invoke("machTimeInfo")
    async def _mach_time(self) -> list[int]:
        numer, denom = MACH_TIMEBASE
        return [mach_ticks(time.time() - ptable.boot_time(self._device)), numer, denom, 0]

    @dtx_on_invoke("machKernelName")
    async def _kernel_name(self) -> str:
        return f"/kernel.release.t{self._device.chip_id:x}"

    @dtx_on_invoke("kpepDatabase")
    async def _kpep(self) -> None:
        return None  # no performance-counter database: a simulated CPU has no PMU events

    @dtx_on_invoke("sysmonProcessAttributes")
    async def _proc_attrs(self) -> list[str]:
        return list(SYSMON_PROCESS_ATTRIBUTES)

    @dtx_on_invoke("sysmonSystemAttributes")
    async def _sys_attrs(self) -> list[str]:
        return list(SYSMON_SYSTEM_ATTRIBUTES)

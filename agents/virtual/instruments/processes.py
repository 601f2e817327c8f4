"""The process table as a device's instruments server sees it: iOS's own daemons plus launched apps.

A real iPhone runs a few hundred processes; the host only ever looks for a handful, so the
virtual device lists the daemons a farm operator meets in Instruments and crash logs, with
fixed low pids (launchd is 1), and every app ``VirtualDevice.launch_app`` started.

Load (CPU, physical footprint, power) is simulated: the virtual harness sets its own with
:func:`set_load` while it "benchmarks" (figures from ``perf_model``); everything else idles.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.virtual.device import VirtualDevice

MB = 1024 * 1024
# (pid, name, executable path, resident footprint MB); parent is launchd, user root unless noted.
SYSTEM_DAEMONS: tuple[tuple[int, str, str, float], ...] = (
    (1, "launchd", "/sbin/launchd", 6.0),
    (31, "logd", "/usr/libexec/logd", 9.0),
    (44, "syslogd", "/usr/sbin/syslogd", 3.0),
    (57, "thermalmonitord", "/usr/libexec/thermalmonitord", 4.0),
    (63, "powerd", "/System/Library/CoreServices/powerd.bundle/powerd", 3.5),
    (78, "lockdownd", "/usr/libexec/lockdownd", 5.0),
    (91, "backboardd", "/usr/libexec/backboardd", 38.0),
    (104, "SpringBoard", "/System/Library/CoreServices/SpringBoard.app/SpringBoard", 110.0),
    (132, "installd", "/usr/libexec/installd", 7.0),
    (147, "mobile_storage_proxy", "/usr/libexec/mobile_storage_proxy", 2.5),
    (166, "osanalyticshelper", "/usr/libexec/osanalyticshelper", 4.0),
    (171, "ReportCrash", "/System/Library/CoreServices/ReportCrash", 6.0),
    (188, "DTServiceHub", "/Developer/Library/PrivateFrameworks/DVTInstrumentsFoundation.framework/DTServiceHub",
     12.0),
)
MOBILE_UID, ROOT_UID = 501, 0
MOBILE_DAEMONS = frozenset({"SpringBoard", "backboardd", "osanalyticshelper", "ReportCrash", "DTServiceHub"})
# CPU a process uses while the benchmark loop runs, in percent of one core, by backend:
# XNNPACK keeps the performance cores busy; Core ML and MPS hand the work to the ANE / GPU.
BENCH_CPU_PCT = {"xnnpack": 380.0, "coreml": 35.0, "mps": 55.0, "metal": 55.0, "vulkan": 60.0}
IDLE_CPU_PCT = 0.4
APP_IDLE_FOOTPRINT = 22 * MB
BOOT_AGE_S = 6 * 3600.0  # the daemons started with the phone, hours ago


@dataclass
class Load:
    cpu_pct: float
    footprint_bytes: int
    power_w: float


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    name: str
    path: str
    uid: int
    started: float  # Unix time
    is_application: bool
    bundle_id: str | None
    app_type: str | None  # "User" | "System" for apps


_loads: weakref.WeakKeyDictionary[VirtualDevice, dict[int, Load]] = weakref.WeakKeyDictionary()
_booted: weakref.WeakKeyDictionary[VirtualDevice, float] = weakref.WeakKeyDictionary()


def set_load(device: VirtualDevice, pid: int, load: Load | None) -> None:
    """What the simulated process is doing now (None: back to idle)."""
    loads = _loads.setdefault(device, {})
    if load is None:
        loads.pop(pid, None)
    else:
        loads[pid] = load


def load_of(device: VirtualDevice, proc: Proc) -> Load:
    found = _loads.get(device, {}).get(proc.pid)
    if found is not None:
        return found
    if proc.bundle_id is not None:
        return Load(IDLE_CPU_PCT, APP_IDLE_FOOTPRINT, 0.01)
    mb = next((m for p, _n, _x, m in SYSTEM_DAEMONS if p == proc.pid), 4.0)
    return Load(IDLE_CPU_PCT / 4, int(mb * MB), 0.0)


def boot_time(device: VirtualDevice) -> float:
    return _booted.setdefault(device, time.time() - BOOT_AGE_S)


def processes(device: VirtualDevice) -> list[Proc]:
    """Every process running on the device now, daemons first, then apps by pid."""
    booted = boot_time(device)
    procs = [Proc(pid, 0 if pid == 1 else 1, name, path, MOBILE_UID if name in MOBILE_DAEMONS else ROOT_UID,
                  booted + pid / 10, False, None, None)
             for pid, name, path, _mb in SYSTEM_DAEMONS]
    for p in sorted(device.processes.values(), key=lambda p: p.pid):
        app = device.apps.get(p.bundle_id)
        record = app.record() if app else {"Path": f"/private/var/containers/Bundle/Application/{p.bundle_id}.app",
                                           "CFBundleExecutable": p.bundle_id.rsplit(".", 1)[-1]}
        exe = str(record["CFBundleExecutable"])
        procs.append(Proc(p.pid, 1, exe, f"{record['Path']}/{exe}", MOBILE_UID, p.started, True, p.bundle_id,
                          app.app_type if app else "User"))
    return procs


def find(device: VirtualDevice, pid: int) -> Proc | None:
    return next((p for p in processes(device) if p.pid == pid), None)


def debuggable(proc: Proc) -> bool:
    """A release build of iOS lets a debugger attach only to development-signed (User) apps."""
    return proc.is_application and proc.app_type == "User"

"""Crash reports a virtual device keeps, as ReportCrash writes them: ``<Process>-<date>.ips``.

The tree is what crashreportcopymobile serves (the device's
``/var/mobile/Library/Logs/CrashReporter``). A report is the iOS 15+ ``.ips`` format: one
line of JSON metadata (``bug_type`` 309 for a user-space crash), then the JSON body with the
exception, the faulting thread's frames and the images they point into. Written when the
simulated harness crashes; every report says it is simulated (``benchfarm_simulated``).
When written, osanalyticshelper logs "Saved type ..." as on iOS, which is what
pymobiledevice3's ``crash watch`` follows.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import weakref
from datetime import UTC, datetime
from typing import Any

from agents.virtual.vfs import Tree

BUG_TYPE_CRASH = "309"
SIGNALS = {11: ("SIGSEGV", "EXC_BAD_ACCESS", "KERN_INVALID_ADDRESS at 0x0000000000000010"),
           6: ("SIGABRT", "EXC_CRASH", None), 9: ("SIGKILL", "EXC_CRASH", None)}
CRASH_DIR = "/private/var/mobile/Library/Logs/CrashReporter"
_trees: weakref.WeakKeyDictionary[Any, Tree] = weakref.WeakKeyDictionary()


def reports(device: Any) -> Tree:
    tree = _trees.get(device)
    if tree is None:
        tree = _trees[device] = Tree()
        tree.makedirs("Retired")
    return tree


def _uuid(*parts: object) -> str:
    return str(uuid.UUID(bytes=hashlib.md5(":".join(map(str, parts)).encode()).digest()))  # noqa: S324


def _thread_state() -> dict[str, Any]:
    """ARM64 registers of the faulting thread, a null-plus-16 load as in the exception."""
    base = 0x16F000000
    return {"flavor": "ARM_THREAD_STATE64", "x": [{"value": 0 if i == 0 else base + 8 * i} for i in range(29)],
            "fp": {"value": base + 0x1F0}, "lr": {"value": 0x100004040}, "sp": {"value": base + 0x1A0},
            "pc": {"value": 0x100004000}, "cpsr": {"value": 0x60000000}, "far": {"value": 0x10},
            "esr": {"value": 0x92000006, "description": "(Data Abort) byte read Translation fault"}}


def ips(device: Any, pid: int, bundle_id: str, name: str, path: str, signal: int, when: float,
        frames: list[str]) -> str:
    """The text of one crash report."""
    sig, exc_type, subtype = SIGNALS.get(signal, (f"SIG{signal}", "EXC_CRASH", None))
    build = device.lockdown_values()["BuildVersion"]
    stamp = datetime.fromtimestamp(when, UTC)
    incident = _uuid(device.udid, pid, when).upper()
    slice_uuid = _uuid(bundle_id, "slice")
    meta = {
        "app_name": name, "timestamp": stamp.strftime("%Y-%m-%d %H:%M:%S.00 +0000"), "app_version": "1.0",
        "slice_uuid": slice_uuid, "build_version": "1", "platform": 2, "bundleID": bundle_id,
        "share_with_app_devs": 0, "is_first_party": 0, "bug_type": BUG_TYPE_CRASH,
        "os_version": f"iPhone OS {device.product_version} ({build})", "roots_installed": 0, "name": name,
        "incident_id": incident,
    }
    exception: dict[str, Any] = {"type": exc_type, "signal": sig, "codes": "0x0000000000000001, 0x0000000000000010",
                                 "rawCodes": [1, 16]}
    if subtype:
        exception["subtype"] = subtype
    body = {
        "uptime": 21600, "procRole": "Foreground", "version": 2, "userID": 501, "deployVersion": 210,
        "modelCode": device.product_type, "coalitionID": pid + 1, "osVersion": {
            "isEmbedded": True, "train": f"iPhone OS {device.product_version}", "releaseType": "User",
            "build": build},
        "captureTime": stamp.strftime("%Y-%m-%d %H:%M:%S.0000 +0000"), "incident": incident, "pid": pid,
        "cpuType": "ARM-64", "procName": name, "procPath": path, "bundleInfo": {
            "CFBundleShortVersionString": "1.0", "CFBundleVersion": "1", "CFBundleIdentifier": bundle_id},
        "parentProc": "launchd", "parentPid": 1, "exception": exception,
        "termination": {"flags": 0, "code": signal, "namespace": "SIGNAL", "indicator": f"Segmentation fault: {signal}",
                        "byProc": "exc handler", "byPid": pid},
        "faultingThread": 0,
        "threads": [{"triggered": True, "id": pid * 100 + 7, "queue": "com.apple.main-thread",
                     "threadState": _thread_state(), "frames": [
            {"imageOffset": 0x4000 + 0x40 * i, "symbol": symbol, "symbolLocation": 16 * i, "imageIndex": 0}
            for i, symbol in enumerate(frames)]}],
        "usedImages": [{"source": "P", "arch": "arm64", "base": 4294967296, "size": 1048576, "uuid": slice_uuid,
                        "path": path, "name": name, "CFBundleIdentifier": bundle_id}],
        "benchfarm_simulated": True,
    }
    return json.dumps(meta) + "\n" + json.dumps(body, indent=2)


def write_crash(device: Any, pid: int, bundle_id: str, name: str, path: str, signal: int,
                frames: list[str]) -> str:
    """Write a report for a crashed process; returns its name in the crash tree."""
    from agents.virtual.services.logbus import Entry, bus

    when = time.time()
    filename = f"{name}-{datetime.fromtimestamp(when, UTC).strftime('%Y-%m-%d-%H%M%S')}.ips"
    tree = reports(device)
    n = 1
    while tree.exists(filename):  # two crashes in one second get distinct names, as ReportCrash's do
        n += 1
        filename = filename.rsplit(".", 1)[0].rsplit("_", 1)[0] + f"_{n}.ips"
    tree.write(filename, ips(device, pid, bundle_id, name, path, signal, when, frames).encode())
    bus(device).emit(Entry(166, "osanalyticshelper", "/usr/libexec/osanalyticshelper",
                           f"Saved type '{BUG_TYPE_CRASH}(<private>)' report (1 of max 25) at "
                           f"{CRASH_DIR}/{filename}", image="OSAnalytics"))
    return filename

"""One virtual iOS device: identity, lockdown values, files, apps, processes, battery, faults.

All state is in memory and belongs to the server's event loop: call these methods from
coroutines or callbacks running on that loop (service handlers do), never from another
thread (tests go through ``agents.virtual.testing.FleetHandle``).

Process API used by the DVT service (``agents/virtual/dvt.py``)::

    pid = device.launch_app(bundle_id, arguments, environment, kill_existing)
        # -> int pid. Raises AppNotInstalledError (a LookupError) if bundle_id is not
        # installed. kill_existing=True first kills running processes of that bundle
        # (each reported through on_process_exit with signal 9). Launching
        # HARNESS_BUNDLE_ID starts the simulated harness (agents/virtual/harness.py).
    device.kill(pid)                      # SIGKILL; raises ProcessLookupError if not running
    device.pid_for_bundle(bundle_id)      # -> int | None, the newest running pid
    device.on_process_exit.append(cb)     # cb(ProcessExit) on every exit, crash or kill;
                                          # a returned awaitable is scheduled as a task
    device.on_process_output.append(cb)   # cb(pid, text): lines the process "prints"

``ProcessExit`` carries pid, bundle_id, exit_code (None when killed by a signal) and
signal (None on a normal exit): the two halves of DTX's
``processWithPID:terminatedWithExitCode:orCrashingSignal:``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.harness.contract import HARNESS_BUNDLE_ID  # noqa: F401  (re-exported)
from agents.virtual.faults import FaultSet
from agents.virtual.tls import identity
from agents.virtual.vfs import MEDIA_ROOT_DIRS, Tree
from device_inventory.catalog import catalog

LOCKDOWN_PORT = 62078
SIGKILL, SIGSEGV = 9, 11
DISK_BYTES = 128 * 10**9
SYSTEM_BYTES = 12 * 10**9  # what iOS itself takes
THERMAL_TEMPERATURE_C = {"nominal": 30.5, "fair": 35.5, "serious": 40.5, "critical": 45.5}

log = logging.getLogger("agents.virtual.device")


class AppNotInstalledError(LookupError):
    """launch_app / house_arrest for a bundle id that is not installed."""


@dataclass
class App:
    bundle_id: str
    info: dict[str, Any]  # Info.plist keys, all of them visible through Browse/Lookup
    app_type: str = "User"
    container: Tree = field(default_factory=Tree)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())

    def __post_init__(self) -> None:
        for d in ("Documents", "Library/Caches", "Library/Preferences", "tmp"):
            self.container.makedirs(d)

    def record(self) -> dict[str, Any]:
        """The installation_proxy view of the app."""
        name = self.info.get("CFBundleExecutable") or self.bundle_id.rsplit(".", 1)[-1]
        rec = {
            "CFBundleExecutable": name,
            "CFBundleName": name,
            "CFBundleDisplayName": name,
            "CFBundleVersion": "1",
            "CFBundleShortVersionString": "1.0",
            **self.info,
            "CFBundleIdentifier": self.bundle_id,
            "ApplicationType": self.app_type,
            "Path": f"/private/var/containers/Bundle/Application/{self.uuid}/{name}.app",
            "Container": f"/private/var/mobile/Containers/Data/Application/{self.uuid}",
            "StaticDiskUsage": 1_000_000,
            "DynamicDiskUsage": self.container.total_bytes(),
        }
        return rec


@dataclass(frozen=True)
class ProcessExit:
    pid: int
    bundle_id: str
    exit_code: int | None
    signal: int | None


@dataclass
class Process:
    pid: int
    bundle_id: str
    arguments: list[str]
    environment: dict[str, str]
    started: float = field(default_factory=time.time)
    task: asyncio.Task | None = None


class VirtualDevice:
    """A phone or iPad as the usbmux, lockdown and service handlers see it."""

    def __init__(
        self,
        devid: int,
        product_type: str,
        product_version: str,
        name: str,
        seed: int = 0,
        tls: bool = True,
        time_compression: float = 50.0,
        min_run_s: float = 0.2,
        battery_level: float = 87.0,
        charging: bool = True,
        host: str = "virtual",
    ):
        product = catalog().product(product_type)
        self.device_class = catalog().class_of_product(product_type)
        # A device that cannot exist (an iPhone 15 Pro on iOS 16) is refused, and the build is the
        # real one of the version: ImpossibleOsVersion otherwise.
        self.build_version = catalog().check_device(product_type, product_version)
        # usbmux DeviceID; also seeds the UDID. A server renumbers the devices it serves.
        self.devid = devid
        self.product_type = product_type
        self.product_version = product_version
        self.marketing_name = product.name
        self.name = name
        self.host = host
        self.tls = tls
        self.time_compression = time_compression
        self.min_run_s = min_run_s
        digest = hashlib.sha256(f"{seed}:{host}:{name}:{devid}".encode()).digest()
        self.ecid = int.from_bytes(digest[:7], "big")
        self.chip_id, self.hardware_model = _hardware(product_type)
        self.udid = f"{self.chip_id:08X}-{self.ecid:016X}"
        self.serial = digest[7:13].hex().upper()[:10]
        self.rng = random.Random(int.from_bytes(digest[13:21], "big"))
        self.attached = True
        self.faults = FaultSet()
        self.trusted_hosts: set[str] = set()
        self.pair_record: dict[str, Any] | None = None  # what usbmuxd hands out
        self.battery_level = float(battery_level)
        self.charging = charging
        self.heat_s = 0.0  # simulated busy seconds, decaying while idle (see harness.ThermalModel)
        self.heat_at = time.monotonic()
        self.media = Tree()
        for d in MEDIA_ROOT_DIRS:
            self.media.makedirs(d)
        self.apps: dict[str, App] = {
            b: App(b, {"CFBundleExecutable": n}, app_type="System")
            for b, n in (("com.apple.mobilesafari", "MobileSafari"), ("com.apple.Preferences", "Preferences"))
        }
        self.processes: dict[int, Process] = {}
        self._pids = itertools.count(400 + devid % 100 * 10)
        self.on_process_exit: list[Callable[[ProcessExit], Any]] = []
        self.on_process_output: list[Callable[[int, str], Any]] = []
        self.connections: set[asyncio.StreamWriter] = set()  # usbmux pipes into this device
        self.tunnels: set[asyncio.StreamWriter] = set()  # open CoreDeviceProxy streams
        self.boots = 0
        self.boot_session = str(uuid.UUID(bytes=digest[21:29] + digest[:8])).upper()

    # -- identity and lockdown ----------------------------------------------------------
    def tunnel_addresses(self) -> tuple[str, str]:
        """(device, host) addresses on the CoreDeviceProxy link: a unique-local /64 per device and
        boot, as a real device picks a fresh one each time it starts (so a reboot moves it)."""
        h = hashlib.sha256(f"{self.udid}:{self.boots}".encode()).digest()
        prefix = "fd" + h[0:1].hex() + ":" + h[1:3].hex() + ":" + h[3:5].hex() + ":" + h[5:7].hex()
        return f"{prefix}::1", f"{prefix}::2"

    def rebooted(self) -> None:
        """A new boot: new boot session and tunnel address; every process is gone."""
        for proc in list(self.processes.values()):
            self.kill(proc.pid)
        self.boots += 1
        self.boot_session = str(uuid.uuid4()).upper()


    @property
    def os_name(self) -> str:
        return "iPadOS" if self.product_type.startswith("iPad") else "iOS"

    @property
    def paired(self) -> bool:
        return self.faults.active("not_paired") is None

    def lockdown_values(self) -> dict[str, Any]:
        return {
            "ActivationState": "Activated",
            "BasebandVersion": "1.00.00",
            # Not an Apple key: tells a driver that this device's numbers are a simulation.
            "BenchfarmSimulated": True,
            "BluetoothAddress": _mac(self.ecid, 1),
            "BuildVersion": self.build_version,
            "CPUArchitecture": "arm64e",
            "ChipID": self.chip_id,
            "DeviceClass": "iPad" if self.product_type.startswith("iPad") else "iPhone",
            "DeviceColor": "1",
            "DeviceName": self.name,
            "DevicePublicKey": identity().public_key_pem,
            "FirmwareVersion": "iBoot-8419.0.0",
            "HardwareModel": self.hardware_model.upper(),
            "HardwarePlatform": f"t{self.chip_id:x}",
            "HostAttached": True,
            "ModelNumber": "MTQA3",
            "PasswordProtected": False,
            "ProductName": self.os_name,
            "ProductType": self.product_type,
            "ProductVersion": self.product_version,
            "ProtocolVersion": "2",
            "RegionInfo": "LL/A",
            "SerialNumber": self.serial,
            "TimeIntervalSince1970": time.time(),
            "TimeZone": "UTC",
            "UniqueChipID": self.ecid,
            "UniqueDeviceID": self.udid,
            "WiFiAddress": _mac(self.ecid, 0),
        }

    def domain_values(self, domain: str) -> dict[str, Any] | None:
        if domain == "com.apple.mobile.battery":
            level = int(round(self.current_battery_level()))
            return {
                "BatteryCurrentCapacity": level,
                "BatteryIsCharging": self.is_charging(),
                "ExternalChargeCapable": self.is_charging(),
                "ExternalConnected": self.is_charging(),
                "FullyCharged": level >= 100,
                "GasGaugeCapability": True,
                "HasBattery": True,
            }
        if domain == "com.apple.disk_usage":
            free = self.free_bytes()
            return {"TotalDiskCapacity": DISK_BYTES, "TotalDataCapacity": DISK_BYTES - SYSTEM_BYTES,
                    "TotalDataAvailable": free, "AmountDataAvailable": free}
        if domain == "com.apple.security.mac.amfi":
            from agents.virtual.services.developer import developer_mode_on

            return {"DeveloperModeStatus": developer_mode_on(self)}
        if domain == "com.apple.international":
            return {"Language": "en", "Locale": "en_US", "Uses24HourClock": True}
        if domain == "com.apple.mobile.wireless_lockdown":
            return {"EnableWifiConnections": False}
        return None

    def free_bytes(self) -> int:
        used = self.media.total_bytes() + sum(a.container.total_bytes() for a in self.apps.values())
        return DISK_BYTES - SYSTEM_BYTES - used

    # -- battery and thermal ------------------------------------------------------------
    def current_battery_level(self) -> float:
        fault = self.faults.active("low_battery")
        return fault.params["level"] if fault else self.battery_level

    def is_charging(self) -> bool:
        return False if self.faults.active("low_battery") else self.charging

    def thermal_state(self) -> str:
        from agents.virtual.perf_model import model, worst  # the thresholds are data (perf_model.yaml)

        return worst(model().thermal.state(self.current_heat()), self.thermal_floor())

    def thermal_floor(self) -> str:
        """The state a thermal fault holds the device at, at least."""
        fault = self.faults.active("thermal")
        return fault.params["state"] if fault else "nominal"

    def current_heat(self) -> float:
        from agents.virtual.perf_model import model

        now = time.monotonic()
        self.heat_s = model().thermal.cool(self.heat_s, (now - self.heat_at) * self.time_compression)
        self.heat_at = now
        return self.heat_s

    def temperature_c(self) -> float:
        return THERMAL_TEMPERATURE_C[self.thermal_state()]

    # -- apps -----------------------------------------------------------------------------
    def install(self, bundle_id: str, info: dict[str, Any]) -> App:
        """Install or upgrade: an upgrade keeps the app's container, as iOS does."""
        old = self.apps.get(bundle_id)
        app = App(bundle_id, dict(info), container=old.container if old else Tree())
        if old:
            app.uuid = old.uuid
        self.apps[bundle_id] = app
        return app

    def uninstall(self, bundle_id: str) -> bool:
        for proc in [p for p in self.processes.values() if p.bundle_id == bundle_id]:
            self.kill(proc.pid)
        return self.apps.pop(bundle_id, None) is not None

    def container(self, bundle_id: str) -> Tree:
        try:
            return self.apps[bundle_id].container
        except KeyError:
            raise AppNotInstalledError(f"{bundle_id} is not installed on {self.udid}") from None

    # -- processes ------------------------------------------------------------------------
    def launch_app(self, bundle_id: str, arguments: list[str] | None = None,
                   environment: dict[str, str] | None = None, kill_existing: bool = True) -> int:
        if bundle_id not in self.apps:
            raise AppNotInstalledError(f"cannot launch {bundle_id}: not installed on {self.udid}")
        if kill_existing:
            for proc in [p for p in self.processes.values() if p.bundle_id == bundle_id]:
                self.kill(proc.pid)
        proc = Process(next(self._pids), bundle_id, list(arguments or []), dict(environment or {}))
        self.processes[proc.pid] = proc
        body: Any
        if bundle_id == HARNESS_BUNDLE_ID:
            from agents.virtual.harness import run_harness

            body = run_harness(self, proc)
        else:
            body = asyncio.Event().wait()  # an ordinary app runs until killed
        proc.task = asyncio.get_running_loop().create_task(self._run(proc, body), name=f"pid-{proc.pid}")
        log.info("launch", extra={"fields": {"udid": self.udid, "bundle_id": bundle_id, "pid": proc.pid}})
        return proc.pid

    async def _run(self, proc: Process, body: Any) -> None:
        try:
            code, sig = await body
        except asyncio.CancelledError:
            code, sig = None, SIGKILL
        except Exception:
            log.exception("process crashed", extra={"fields": {"udid": self.udid, "pid": proc.pid}})
            code, sig = None, SIGSEGV
        self._exited(proc, code, sig)

    def _exited(self, proc: Process, code: int | None, sig: int | None) -> None:
        if self.processes.pop(proc.pid, None) is None:
            return
        log.info("exit", extra={"fields": {"udid": self.udid, "pid": proc.pid, "code": code, "signal": sig}})
        event = ProcessExit(proc.pid, proc.bundle_id, code, sig)
        for cb in list(self.on_process_exit):
            _call(cb, event)

    def emit_output(self, pid: int, text: str) -> None:
        for cb in list(self.on_process_output):
            _call(cb, pid, text)

    def kill(self, pid: int) -> None:
        proc = self.processes.get(pid)
        if proc is None:
            raise ProcessLookupError(f"no process {pid} on {self.udid}")
        if proc.task is not None and not proc.task.done():
            proc.task.cancel()
        self._exited(proc, None, SIGKILL)

    def pid_for_bundle(self, bundle_id: str) -> int | None:
        pids = [p.pid for p in self.processes.values() if p.bundle_id == bundle_id]
        return max(pids) if pids else None

    def summary(self) -> dict[str, Any]:
        return {
            "udid": self.udid, "devid": self.devid, "name": self.name, "host": self.host,
            "product_type": self.product_type, "product_version": self.product_version,
            "device_class": self.device_class.id, "attached": self.attached, "paired": self.paired,
            "tls": self.tls, "battery_level": self.current_battery_level(), "charging": self.is_charging(),
            "thermal_state": self.thermal_state(), "faults": self.faults.snapshot(),
            "apps": sorted(self.apps), "processes": [
                {"pid": p.pid, "bundle_id": p.bundle_id} for p in self.processes.values()],
        }


def _call(cb: Callable[..., Any], *args: Any) -> None:
    try:
        result = cb(*args)
        if inspect.isawaitable(result):
            asyncio.ensure_future(result)
    except Exception:
        log.exception("process callback failed")


def _mac(ecid: int, salt: int) -> str:
    raw = (ecid * 2654435761 + salt) & 0xFFFFFFFFFF
    return ":".join(f"{b:02x}" for b in (0xF0, *raw.to_bytes(5, "big")))


def _hardware(product_type: str) -> tuple[int, str]:
    from pymobiledevice3.irecv_devices import IRECV_DEVICES

    for d in IRECV_DEVICES:
        if d.product_type == product_type:
            return d.chip_id, d.hardware_model
    return 0x8000, "unknown"

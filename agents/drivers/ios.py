"""The iOS driver: iPhones and iPads over usbmuxd, with pymobiledevice3 as a library.

discover (usbmux + lockdown values -> catalog class), health (diagnostics IORegistry battery,
AFC free space, pairing, developer mode -> ``agents.health`` policy), prepare (install the
harness only when its build differs, push model + job.json with house_arrest), run (DVT
process control launch, poll for result.json, pull, kill), cleanup.

The agent's protocols are synchronous; pymobiledevice3 is asyncio. The driver owns one event
loop on a dedicated thread (so an iOS 17 userspace tunnel or a slow call never blocks the
agent's own loop, and every call has a hard outer deadline), and each public call opens
its own lockdown session: a device that was unplugged and replugged between calls just works.

Paths by iOS version: up to iOS 16, DVT runs over lockdown (Developer Disk Image mounted);
from iOS 17.4 over the CoreDeviceProxy tunnel and RSD (``ios17_tunnel``: pymobiledevice3's
userspace tunnel in this process, or a shared tunneld), one tunnel per device kept across calls
(``agents.drivers.ios_tunnel``). Installation, file transfer and health stay on lockdown over
usbmux on every version, as on a real phone. Verified against the virtual fleet
(``agents/virtual``: iOS 16, 18 and 26 devices, unchanged pymobiledevice3 over real sockets),
not on hardware.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pymobiledevice3 import usbmux
from pymobiledevice3.services.afc import AfcService
from pymobiledevice3.services.diagnostics import DiagnosticsService

from agents.drivers import ios_bench, ios_developer
from agents.drivers.ios_ipa import IpaError, IpaInfo, read_ipa, write_placeholder_ipa
from agents.drivers.ios_session import CALL_TIMEOUT_S, LIST_TIMEOUT_S, Session, Target
from agents.drivers.ios_tunnel import TunnelPool
from agents.harness.contract import validate_job
from agents.health import HealthPolicy, evaluate, thermal_from_battery_temperature
from agents.protocols import DeviceInfo, DriverError, Health
from agents.timeline import Timeline
from device_inventory.catalog import UnknownProductType, catalog

log = logging.getLogger("agents.drivers.ios")
T = TypeVar("T")

# Lockdown value a virtual device sets (agents/virtual): its numbers are a simulation.
SIMULATED_KEY = "BenchfarmSimulated"
# Launch, first frame and ExecuTorch load on top of the job's own timeout; a cold CoreML
# compile of a large model on an old phone can take tens of seconds.
STARTUP_ALLOWANCE_S = 60.0
POLL_INTERVAL_S = 0.5
# Outer deadline on top of the inner per-call timeouts: only reached if something inside
# ignores cancellation; then the loop thread is presumed wedged.
OUTER_GRACE_S = 30.0


class IosDriver:
    name = "ios"

    def __init__(self, harness_ipa: Path | str | None = None, usbmux_address: str | None = None,
                 pairing_records_dir: Path | str | None = None, timeline: Timeline | None = None,
                 policy: HealthPolicy | None = None, call_timeout_s: float = CALL_TIMEOUT_S,
                 startup_allowance_s: float = STARTUP_ALLOWANCE_S, poll_interval_s: float = POLL_INTERVAL_S,
                 ios17_tunnel: str = "userspace", host: str | None = None,
                 tunneld_address: str | None = None, mount_developer_image: bool = True):
        """``harness_ipa``: the signed harness for real devices (virtual devices get a placeholder
        when it is None). ``usbmux_address``: ``host:port`` or socket path (None: the
        ``USBMUXD_SOCKET_ADDRESS`` environment variable, else the system usbmuxd).
        ``timeline``: steps are recorded on it when given (settable per attempt)."""
        if ios17_tunnel not in ("userspace", "tunneld"):
            raise ValueError(f"ios17_tunnel must be 'userspace' or 'tunneld', got {ios17_tunnel!r}")
        # Options may arrive as JSON (BENCHFARM_DRIVER_OPTIONS): paths as strings.
        pairs = Path(pairing_records_dir) if pairing_records_dir else None
        tunneld = None
        if tunneld_address:
            host_part, _, port = tunneld_address.rpartition(":")
            tunneld = (host_part, int(port))
        self.target = Target(usbmux_address, pairs, float(call_timeout_s), ios17_tunnel, tunneld)
        self.tunnels = TunnelPool(ios17_tunnel, usbmux_address, tunneld)  # lives on self._loop
        self.harness_ipa = Path(harness_ipa) if harness_ipa else None
        self.timeline = timeline
        self.policy = policy or HealthPolicy()
        self.startup_allowance_s = startup_allowance_s
        self.poll_interval_s = poll_interval_s
        self.host = host or socket.gethostname()
        # mount a missing developer disk image before a lease (pymobiledevice3's auto-mount)
        self.mount_developer_image = bool(mount_developer_image)
        self._installed: dict[str, str] = {}  # udid -> build hash this driver installed
        self._known: dict[str, DeviceInfo] = {}  # udid -> description, while attached and paired
        self._placeholder: IpaInfo | None = None
        # udid -> (attempt id, device_metrics) of the last run, until the agent takes it
        self._metrics: dict[str, tuple[str, dict[str, Any]]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ios-driver-loop", daemon=True)
        self._thread.start()

    # -- sync facade ---------------------------------------------------------------------
    def _sync(self, coro: Coroutine[Any, Any, T], budget_s: float) -> T:
        if self._loop.is_closed():
            raise RuntimeError("IosDriver is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(budget_s + OUTER_GRACE_S)
        except TimeoutError:
            fut.cancel()
            raise DriverError("timeout", f"driver call exceeded {budget_s + OUTER_GRACE_S:.0f} s") from None

    def close(self) -> None:
        if self._placeholder is not None:
            shutil.rmtree(self._placeholder.path.parent, ignore_errors=True)
            self._placeholder = None
        if not self._loop.is_closed():
            if self._thread.is_alive():
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(self.tunnels.close(), self._loop).result(15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    async def _session(self, udid: str) -> Session:
        s = Session(udid, self.target, self.timeline, self.tunnels)
        await s.connect()
        return s

    # -- discovery -----------------------------------------------------------------------
    def discover(self) -> list[DeviceInfo]:
        return self._sync(self._discover(), LIST_TIMEOUT_S + 4 * self.target.call_timeout_s)

    async def _discover(self) -> list[DeviceInfo]:
        try:
            muxed = await asyncio.wait_for(usbmux.list_devices(usbmux_address=self.target.usbmux_address),
                                           LIST_TIMEOUT_S)
        except Exception as exc:  # no usbmuxd: no devices, not a crash of the agent
            log.warning("usbmuxd not reachable: %s", exc)
            return []
        # A device on USB and Wi-Fi is listed twice; USB is the one benchmarks may use.
        serials = sorted({d.serial for d in muxed if d.connection_type == "USB"})
        # The agent rediscovers every few seconds: a paired device that stayed attached keeps its
        # description (no lockdown session); one that left is forgotten, so a replug re-reads it.
        self._known = {u: d for u, d in self._known.items() if u in serials}
        fresh = [u for u in serials if u not in self._known]
        results = await asyncio.gather(*(self._describe(u) for u in fresh), return_exceptions=True)
        found: dict[str, DeviceInfo] = {}
        for udid, res in zip(fresh, results, strict=True):
            if isinstance(res, DeviceInfo):
                found[udid] = res
                if res.extra["paired"]:
                    self._known[udid] = res
            elif isinstance(res, DriverError | UnknownProductType):
                log.warning("skipping %s: %s", udid, res)
            else:
                raise res
        return [found.get(u) or self._known[u] for u in serials if u in found or u in self._known]

    async def _describe(self, udid: str) -> DeviceInfo:
        # An untrusted device is still listed (paired=False): health() then says why it cannot
        # be used, instead of the device silently missing from the fleet.
        s = Session(udid, self.target, self.timeline)
        try:
            ld = await s.connect(require_paired=False)
            v, paired = ld.all_values, ld.paired
        finally:
            await s.close()
        ptype = v["ProductType"]
        cls = catalog().class_of_product(ptype)
        return DeviceInfo(
            id=v.get("UniqueDeviceID", udid), device_class=cls.id, product_type=ptype,
            name=v.get("DeviceName", udid), os="iPadOS" if ptype.startswith("iPad") else "iOS",
            os_version=v.get("ProductVersion", "?"), chip=cls.chip, host=self.host, driver=self.name,
            simulated=v.get(SIMULATED_KEY) is True,
            extra={"build": v.get("BuildVersion"), "marketing_name": catalog().product(ptype).name,
                   "paired": paired,
                   "dvt_path": "rsd" if int(v.get("ProductVersion", "0").split(".")[0]) >= 17 else "lockdown"},
        )

    # -- health --------------------------------------------------------------------------
    def health(self, device: DeviceInfo, model_bytes: int = 0) -> Health:
        """Readings plus the gating verdict; a not-paired device is unhealthy, a lost one raises."""
        return self._sync(self._health(device, model_bytes), 5 * self.target.call_timeout_s
                          + ios_developer.MOUNT_TIMEOUT_S)

    async def _health(self, device: DeviceInfo, model_bytes: int) -> Health:
        try:
            s = await self._session(device.id)
        except DriverError as exc:
            if exc.category != "not_paired":
                raise
            return evaluate(Health(ok=False, problems=[str(exc)]), model_bytes, self.policy)
        try:
            async with s.step("health"):
                return evaluate(await self._readings(s), model_bytes, self.policy)
        finally:
            await s.close()

    async def _readings(self, s: Session) -> Health:
        assert s.lockdown is not None
        problems: list[str] = []
        async with s.service("diagnostics_relay", DiagnosticsService(s.lockdown)) as diag:
            battery = await s.call("battery", diag.get_battery()) or {}
        level = battery.get("CurrentCapacity")
        temp = battery.get("Temperature")  # centi-degrees Celsius, as IOPMPowerSource reports it
        temperature_c = temp / 100.0 if isinstance(temp, int | float) else None
        ready = await ios_developer.readiness(s, self.mount_developer_image)
        if not ready.ok:
            problems.append(f"{ready.condition}: {ready.detail}")
        async with s.service("afc", AfcService(s.lockdown)) as afc:
            info = await s.call("storage", afc.get_device_info())
        free = info.get("FSFreeBytes")
        return Health(
            ok=True, battery_level=float(level) if isinstance(level, int | float) else None,
            charging=battery.get("IsCharging"), temperature_c=temperature_c,
            thermal_state=thermal_from_battery_temperature(temperature_c),
            free_bytes=int(free) if free is not None else None, problems=problems, condition=ready.condition)

    # -- benchmark -----------------------------------------------------------------------
    def prepare(self, device: DeviceInfo, job: dict[str, Any], model_path: Path) -> None:
        validate_job(job)
        model_path = Path(model_path)
        with model_path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != job["model_sha256"]:
            raise ValueError(f"{model_path}: sha256 {digest} does not match job field model_sha256")
        ipa = self._harness_for(device)
        budget = 6 * self.target.call_timeout_s + ios_bench.INSTALL_TIMEOUT_S + ios_developer.MOUNT_TIMEOUT_S \
            + ios_bench.transfer_timeout(model_path.stat().st_size + ipa.path.stat().st_size)
        self._sync(self._prepare(device, job, model_path, ipa), budget)

    async def _prepare(self, device: DeviceInfo, job: dict[str, Any], model_path: Path, ipa: IpaInfo) -> None:
        s = await self._session(device.id)
        try:
            async with s.step("health_gate"):
                health = evaluate(await self._readings(s), model_path.stat().st_size, self.policy)
            if not health.ok:
                raise DriverError("unhealthy", f"{health.action}: {'; '.join(health.problems)}")
            if await ios_bench.ensure_harness(s, ipa, self._installed.get(device.id)):
                self._installed[device.id] = ipa.build_hash
            await ios_bench.push_job(s, job, model_path)
        finally:
            await s.close()

    def run(self, device: DeviceInfo, job: dict[str, Any]) -> bytes:
        """Launch the harness and return the raw result.json bytes (contract-checked); the
        device's own figures of the run wait in ``take_device_metrics``."""
        budget = float(job["timeout_s"]) + self.startup_allowance_s + 8 * self.target.call_timeout_s
        self._metrics.pop(device.id, None)
        raw, metrics = self._sync(self._run(device, job), budget)
        self._metrics[device.id] = (str(job["attempt_id"]), metrics)
        return raw

    def take_device_metrics(self, device: DeviceInfo, job: dict[str, Any]) -> dict[str, Any] | None:
        """The ``device_metrics`` block of the last ``run`` of ``job`` on ``device`` (once), else None."""
        attempt, metrics = self._metrics.pop(device.id, ("", None))
        return metrics if attempt == str(job["attempt_id"]) else None

    async def _run(self, device: DeviceInfo, job: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        s = await self._session(device.id)
        try:
            return await ios_bench.run_harness(s, job, self.startup_allowance_s, self.poll_interval_s,
                                               device.simulated)
        finally:
            await s.close()

    def cleanup(self, device: DeviceInfo, job: dict[str, Any]) -> None:
        """Kill a leftover harness and remove the attempt's files; raises DriverError if unreachable."""
        self._sync(self._cleanup(device, job), 8 * self.target.call_timeout_s)

    async def _cleanup(self, device: DeviceInfo, job: dict[str, Any]) -> None:
        s = await self._session(device.id)
        try:
            async with s.step("cleanup") as entry:
                entry["removed"] = await ios_bench.clean_container(s, job)
        finally:
            await s.close()

    def _harness_for(self, device: DeviceInfo) -> IpaInfo:
        try:
            if self.harness_ipa is not None:
                return read_ipa(self.harness_ipa)
            if not device.simulated:
                raise DriverError("install_failed", "no harness .ipa configured for a real device "
                                                    "(build it: agents/harness/ios/README.md)")
            if self._placeholder is None:
                path = Path(tempfile.mkdtemp(prefix="benchfarm-ipa-")) / "BenchfarmHarness-placeholder.ipa"
                self._placeholder = read_ipa(write_placeholder_ipa(path))
            return self._placeholder
        except IpaError as exc:
            raise DriverError("install_failed", str(exc)) from None

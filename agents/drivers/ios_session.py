"""Async building blocks of the iOS driver: one bounded, error-mapped lockdown session per call.

Every device call goes through ``Session.call`` with a timeout (a stuck usbmux or lockdown
socket otherwise blocks an agent slot forever) and every pymobiledevice3 exception leaves
as a ``DriverError`` with a category the retry policy understands. A connection-level
failure is only ``device_lost`` if the device has really left usbmuxd's list; otherwise it
is the failure of the step (``transfer_failed``, ``launch_failed``...), which is retryable
on the same device.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from packaging.version import Version
from pymobiledevice3 import usbmux
from pymobiledevice3.exceptions import (
    ConnectionTerminatedError,
    DeviceNotFoundError,
    FatalPairingError,
    MuxException,
    NoDeviceConnectedError,
    NotPairedError,
    NotTrustedError,
    PairingError,
    PasswordRequiredError,
)
from pymobiledevice3.lockdown import LockdownClient, create_using_usbmux
from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl

from agents.drivers.ios_tunnel import TUNNEL_TIMEOUT_S, TunnelPool
from agents.protocols import DriverError
from agents.timeline import Timeline

log = logging.getLogger("agents.drivers.ios")
T = TypeVar("T")

# A lockdown/AFC/installation_proxy round trip takes milliseconds; 20 s means the device or
# usbmuxd is wedged. Installs and model pushes get their own, size-dependent budgets.
CALL_TIMEOUT_S = 20.0
LIST_TIMEOUT_S = 5.0
NOT_PAIRED = (NotPairedError, PairingError, NotTrustedError, FatalPairingError)
GONE = (DeviceNotFoundError, NoDeviceConnectedError, MuxException, ConnectionTerminatedError,
        ConnectionError, asyncio.IncompleteReadError, EOFError)
# iOS 17 moved the developer services behind a RemoteXPC tunnel (RSD); DVT over plain lockdown
# is refused there (agents.drivers.ios_tunnel).
RSD_MAJOR = 17


@dataclass(frozen=True)
class Target:
    """How to reach usbmuxd and where pair records live (None: pymobiledevice3's defaults)."""

    usbmux_address: str | None = None
    pairing_records_dir: Path | None = None
    call_timeout_s: float = CALL_TIMEOUT_S
    ios17_tunnel: str = "userspace"  # "userspace" (UserspaceRsdTunnel) | "tunneld"
    tunneld_address: tuple[str, int] | None = None  # None: pymobiledevice3's default 127.0.0.1:49151


async def attached_udids(target: Target) -> list[str]:
    devices = await asyncio.wait_for(usbmux.list_devices(usbmux_address=target.usbmux_address), LIST_TIMEOUT_S)
    return [d.serial for d in devices]


async def classify(exc: BaseException, category: str, udid: str, target: Target, what: str) -> DriverError:
    """Map an exception from step ``what`` to a DriverError (``category`` when nothing more specific)."""
    if isinstance(exc, DriverError):
        return exc
    detail = f"{what}: {type(exc).__name__}: {exc}"[:600]
    if isinstance(exc, PasswordRequiredError):
        # a locked phone refuses to start services (CoreDeviceProxy among them): paired, just locked
        return DriverError(category, f"{detail} (the device is locked: unlock it)")
    if isinstance(exc, NOT_PAIRED):
        return DriverError("not_paired", f"{detail} (unlock the device and trust this host)")
    if isinstance(exc, GONE):
        try:
            present = udid in await attached_udids(target)
        except Exception:  # usbmuxd itself is gone: so is the device, for us
            present = False
        return DriverError(category if present else "device_lost", detail)
    if isinstance(exc, TimeoutError):
        return DriverError("timeout", detail)
    return DriverError(category, detail)


class Session:
    """One lockdown connection to one device, for the duration of one driver call."""

    def __init__(self, udid: str, target: Target, timeline: Timeline | None,
                 tunnels: TunnelPool | None = None) -> None:
        self.udid = udid
        self.target = target
        self.timeline = timeline or Timeline()
        self.lockdown: LockdownClient | None = None
        self.tunnels = tunnels or TunnelPool(target.ios17_tunnel, target.usbmux_address, target.tunneld_address)

    async def call(self, what: str, aw: Awaitable[T], category: str = "other",
                   timeout: float | None = None) -> T:
        """Await one device operation with a timeout; failures become DriverErrors."""
        try:
            return await asyncio.wait_for(aw, timeout or self.target.call_timeout_s)
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                raise DriverError("timeout", f"{what}: no answer from {self.udid} within "
                                             f"{timeout or self.target.call_timeout_s:.0f} s") from None
            raise await classify(exc, category, self.udid, self.target, what) from exc

    @asynccontextmanager
    async def step(self, name: str, **args: Any) -> AsyncIterator[dict[str, Any]]:
        with self.timeline.step(name, udid=self.udid, **args) as entry:
            yield entry

    async def connect(self, require_paired: bool = True) -> LockdownClient:
        """Lockdown client for the device; ``require_paired=False`` still reads the values an
        unpaired device answers (ProductType, ProductVersion, UniqueDeviceID, DeviceName)."""
        async with self.step("lockdown"):
            self.lockdown = await self.call("lockdown", create_using_usbmux(
                serial=self.udid, autopair=False, usbmux_address=self.target.usbmux_address,
                pairing_records_cache_folder=self.target.pairing_records_dir))
            if require_paired and not self.lockdown.paired:
                # autopair=False: the client connects anyway and only fails at the first service.
                await self.close()
                raise DriverError("not_paired", f"{self.udid} is not paired with this host "
                                                "(unlock the device and trust this host)")
        return self.lockdown

    @asynccontextmanager
    async def service(self, what: str, svc: T, category: str = "other") -> AsyncIterator[T]:
        """Start a lockdown service (bounded) and close it afterwards."""
        await self.call(f"start {what}", svc.connect(), category)  # type: ignore[attr-defined]
        try:
            yield svc
        finally:
            await close_quietly(svc)

    async def close(self) -> None:
        if self.lockdown is not None:
            await close_quietly(self.lockdown)
            self.lockdown = None

    @asynccontextmanager
    async def process_control(self) -> AsyncIterator[ProcessControl]:
        """DVT process control: over lockdown up to iOS 16, over the device's RSD from iOS 17."""
        modern = self.modern
        try:
            async with contextlib.AsyncExitStack() as stack:
                provider = DvtProvider(await self.dvt_target())
                # A real device refuses this service without a developer image (iOS <= 16: the
                # Developer Disk Image; iOS 17+: the personalized image) or Developer Mode.
                await self.call("dvt connect (developer image mounted? Developer Mode on?)",
                                provider.connect(), "launch_failed")
                stack.push_async_callback(close_quietly, provider)
                pc = ProcessControl(provider)
                await self.call("processcontrol channel", pc.connect(), "launch_failed")
                stack.push_async_callback(close_quietly, pc)
                yield pc
        except DriverError as exc:
            if not modern:
                raise
            await self.tunnels.discard(self.udid)  # it may be the tunnel: the next call builds a fresh one
            if isinstance(exc.__cause__, GONE) and exc.category != "device_lost":
                # the device is still attached: its developer tunnel went away under the call
                raise DriverError("launch_failed", f"developer tunnel to {self.udid} lost: {exc}") from exc
            raise
        except BaseException:
            if modern:
                await self.tunnels.discard(self.udid)
            raise

    @property
    def modern(self) -> bool:
        """iOS 17+: developer services behind the CoreDeviceProxy tunnel (RSD), not lockdown."""
        assert self.lockdown is not None
        return Version(self.lockdown.product_version).major >= RSD_MAJOR

    async def dvt_target(self) -> Any:
        """What a ``DvtProvider`` connects through: lockdown up to iOS 16, the device's RSD from 17."""
        assert self.lockdown is not None
        return await self._rsd() if self.modern else self.lockdown

    async def _rsd(self) -> Any:
        """The device's RSD (``agents.drivers.ios_tunnel``); the set-up is the ``tunnel`` step."""
        async with self.step("tunnel", mode=self.target.ios17_tunnel) as entry:
            rsd, entry["reused"] = await self.call(f"{self.target.ios17_tunnel} tunnel", self.tunnels.rsd(self.udid),
                                                   "launch_failed", timeout=TUNNEL_TIMEOUT_S)
            entry["address"] = rsd.service.address[0]
        return rsd


async def close_quietly(obj: Any) -> None:
    """Closing is best effort: the device may already be gone, which the caller has reported."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(obj.close(), 5)

"""iOS 17+ developer services: the RSD behind a CoreDeviceProxy tunnel, kept per device.

From iOS 17 DVT (process control) is not started through lockdownd any more: the host opens
the lockdown service ``com.apple.internal.devicecompute.CoreDeviceProxy`` (iOS 17.4+), runs a
TCP/IP stack over it and talks RemoteServiceDiscovery on the device's tunnel address. Two ways
to hold that tunnel, both pymobiledevice3's own:

- ``userspace``: ``UserspaceRsdTunnel`` in this process (pure-Python stack, no root). Its stack
  is one per process, which is why the agent runs one worker process per device; opening a
  tunnel to another device closes this process's previous one.
- ``tunneld``: a ``pymobiledevice3 remote tunneld`` on the host (root, kernel TUN) owns the
  tunnels for every device and every agent; we only open an RSD connection through it.

A real host keeps the tunnel while it works with the device, so the pool does: the first
developer call of a lease builds it (recorded as the ``tunnel`` step, with its set-up time),
later calls reuse it, and a call that fails on it throws it away so the next one starts afresh
(a dropped tunnel, a rebooted device with a new address).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("agents.drivers.ios")

TUNNEL_TIMEOUT_S = 60.0  # lockdown + CDTunnel handshake + RSD handshake; seconds on a real phone


@dataclass
class _Held:
    rsd: Any  # RemoteServiceDiscoveryService
    tunnel: Any | None  # UserspaceRsdTunnel (userspace mode) or None (tunneld owns it)

    def alive(self) -> bool:
        return self.tunnel is None or self.tunnel.rsd is not None  # the tunnel clears rsd when it dies


class TunnelPool:
    """RSDs by UDID, on the driver's event loop."""

    def __init__(self, mode: str, usbmux_address: str | None, tunneld_address: tuple[str, int] | None) -> None:
        if mode not in ("userspace", "tunneld"):
            raise ValueError(f"ios17_tunnel must be 'userspace' or 'tunneld', got {mode!r}")
        self.mode = mode
        self.usbmux_address = usbmux_address
        self.tunneld_address = tunneld_address
        self._held: dict[str, _Held] = {}

    async def rsd(self, udid: str) -> tuple[Any, bool]:
        """A connected RSD for ``udid`` and whether it was reused; raises what the client raised."""
        held = self._held.get(udid)
        if held is not None and held.alive():
            return held.rsd, True
        await self.discard(udid)
        if self.mode == "tunneld":
            held = await self._via_tunneld(udid)
        else:
            for other in [u for u in self._held if u != udid]:
                await self.discard(other)  # one userspace stack per process
            held = await self._userspace(udid)
        self._held[udid] = held
        return held.rsd, False

    async def _userspace(self, udid: str) -> _Held:
        from pymobiledevice3.remote.userspace_tunnel import UserspaceRsdTunnel

        if self.usbmux_address is not None:
            # UserspaceRsdTunnel opens its lockdown with pymobiledevice3's default usbmux address,
            # which is this variable: point it where the driver's own calls go.
            os.environ["USBMUXD_SOCKET_ADDRESS"] = self.usbmux_address
        tunnel = UserspaceRsdTunnel(serial=udid, autopair=False, remotepairing_fallback=False)
        rsd = await tunnel.aopen()
        return _Held(rsd, tunnel)

    async def _via_tunneld(self, udid: str) -> _Held:
        from pymobiledevice3.tunneld.api import TUNNELD_DEFAULT_ADDRESS, get_tunneld_device_by_udid

        from agents.protocols import DriverError

        rsd = await get_tunneld_device_by_udid(udid, self.tunneld_address or TUNNELD_DEFAULT_ADDRESS)
        if rsd is None:
            raise DriverError("launch_failed", f"tunneld has no tunnel to {udid} (is it running? is the "
                                               "device on iOS 17.4+ with Developer Mode on?)")
        return _Held(rsd, None)

    async def discard(self, udid: str) -> None:
        """Forget (and close) the device's tunnel: after a failure on it, or at the end."""
        held = self._held.pop(udid, None)
        if held is None:
            return
        with contextlib.suppress(Exception):
            if held.tunnel is not None:
                await asyncio.wait_for(held.tunnel.aclose(), 10)  # closes its RSD too
            else:
                await asyncio.wait_for(held.rsd.close(), 5)

    async def close(self) -> None:
        for udid in list(self._held):
            await self.discard(udid)

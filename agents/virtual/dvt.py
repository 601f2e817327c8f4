"""The virtual device's DVT (Instruments) server: DTX on the wire, process control behind it.

A real device answers ``com.apple.instruments.remoteserver[.DVTSecureSocketProxy]`` with
the DTX protocol. pymobiledevice3's ``dtx`` package is a symmetric asyncio DTX stack, so the
device side is the same ``DTXConnection`` with a device-side service class registered for
the processcontrol channel: the host's ``_requestChannelWithCode:identifier:`` instantiates
it, its ``@dtx_on_invoke`` handlers run, and their return values travel back as the reply
(an archived NSNumber pid for launch, an NSError for a refused launch).

The only non-protocol piece is the seam into the simulated device: ``device.launch_app``,
``device.kill``, ``device.pid_for_bundle`` and the ``device.on_process_exit`` callback list
(see ``agents/virtual/device.py``). Everything the host sees is wire-level DTX.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

from pymobiledevice3.dtx import DTXConnection, DTXService, NSError, dtx_on_invoke

from agents.virtual.instruments import processes as ptable
from agents.virtual.instruments.deviceinfo import DeviceInfoDevice
from agents.virtual.instruments.energy import EnergyDevice
from agents.virtual.instruments.sysmontap import SysmontapDevice

logger = logging.getLogger(__name__)

PROCESSCONTROL = "com.apple.instruments.server.services.processcontrol"
# What instrumentsd publishes that matters to a process-control client; a real device lists
# dozens of services here, the host only checks the ones it opens.
DEVICE_CAPABILITIES: dict[str, Any] = {
    "com.apple.private.DTXBlockCompression": 0,
    "com.apple.private.DTXConnection": 1,
    PROCESSCONTROL: 4,
    DeviceInfoDevice.IDENTIFIER: 1,
    SysmontapDevice.IDENTIFIER: 1,
    EnergyDevice.IDENTIFIER: 1,
}
# The host announces this capability when it wants processWithPID:terminated... callbacks.
TERMINATION_CALLBACK = "com.apple.instruments.client.processcontrol.capability.terminationCallback"
# Bounds the capability handshake, so a host that connects and says nothing cannot hold a
# device connection forever.
HANDSHAKE_TIMEOUT_S = 15.0
SIGKILL = 9


def _plain(value: Any) -> Any:
    """DTX primitives arrive as int/str subclasses or wrappers; the device wants plain values."""
    return getattr(value, "value", value)


def _error(message: str, code: int = 1) -> NSError:
    return NSError(code, "DTXProcessControlErrorDomain", {"NSLocalizedDescription": message})


class ProcessControlDevice(DTXService):
    """Device side of the processcontrol channel, one instance per channel the host opens."""

    IDENTIFIER = PROCESSCONTROL

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._device = ctx["device"]
        self._observed: set[int] = set()
        self._closed = False
        self._device.on_process_exit.append(self._process_exited)

    def on_closed(self, reason: str = "") -> None:
        self._closed = True
        with suppress(ValueError):
            self._device.on_process_exit.remove(self._process_exited)
        super().on_closed(reason)

    @dtx_on_invoke("launchSuspendedProcessWithDevicePath:bundleIdentifier:environment:arguments:options:")
    async def _launch(self, device_path: Any, bundle_id: Any, environment: Any, arguments: Any,
                      options: Any) -> Any:
        options = options if isinstance(options, dict) else {}
        try:
            pid = self._device.launch_app(str(_plain(bundle_id)),
                                          [str(_plain(a)) for a in (arguments or [])],
                                          {str(k): str(_plain(v)) for k, v in (environment or {}).items()},
                                          bool(options.get("KillExisting", True)))
        except Exception as exc:  # the device refusing a launch is an NSError, as on hardware
            return _error(f"The operation couldn't be completed. Failed to launch {_plain(bundle_id)}: {exc}")
        self._observed.add(int(pid))
        return int(pid)

    @dtx_on_invoke("sendSignal:toPid:")
    async def _send_signal(self, sig: Any, pid: Any) -> Any:
        return await self._kill(int(_plain(pid)), int(_plain(sig)))

    @dtx_on_invoke("killPid:")
    async def _kill_pid(self, pid: Any) -> Any:
        return await self._kill(int(_plain(pid)), SIGKILL)

    async def _kill(self, pid: int, sig: int) -> Any:
        try:
            self._device.kill(pid)
        except Exception as exc:
            return _error(f"could not signal pid {pid} with {sig}: {exc}")
        return None

    @dtx_on_invoke("processIdentifierForBundleIdentifier:")
    async def _pid_for_bundle(self, bundle_id: Any) -> int:
        return int(self._device.pid_for_bundle(str(_plain(bundle_id))) or 0)

    @dtx_on_invoke("startObservingPid:")
    async def _start_observing(self, pid: Any) -> None:
        self._observed.add(int(_plain(pid)))

    @dtx_on_invoke("stopObservingPid:")
    async def _stop_observing(self, pid: Any) -> None:
        self._observed.discard(int(_plain(pid)))

    @dtx_on_invoke("requestDisableMemoryLimitsForPid:")
    async def _disable_memory_limits(self, pid: Any) -> bool:
        return True

    @dtx_on_invoke("isPidDebuggable:")
    async def _is_debuggable(self, pid: Any) -> bool:
        proc = ptable.find(self._device, int(_plain(pid)))
        return proc is not None and ptable.debuggable(proc)

    def _process_exited(self, event: Any) -> Any:
        """VirtualDevice exit callback (runs on the server loop): tell the host, as instrumentsd does.

        Returns a coroutine, which the device schedules as a task, so the callback never blocks
        the process table on a slow host.
        """
        if self._closed or event.pid not in self._observed:
            return None
        self._observed.discard(event.pid)
        peer_caps = self._ctx["connection"].supported_identifiers or {}
        if not peer_caps.get(TERMINATION_CALLBACK):
            return None
        return self._notify_exit(event.pid, event.exit_code, event.signal)

    async def _notify_exit(self, pid: int, exit_code: int | None, signal: int | None) -> None:
        with suppress(Exception):  # the host may already have closed the channel
            await self.invoke("processWithPID:terminatedWithExitCode:orCrashingSignal:",
                              pid, exit_code or 0, signal or 0, expects_reply=False)


class DeviceDTXConnection(DTXConnection):
    """The device end of a DTX connection: a channel it has no service for is refused at once.

    pymobiledevice3's connection answers an unknown identifier with a dynamic service that
    then fails every selector; instrumentsd instead replies to ``_requestChannelWithCode:identifier:``
    with an NSError, which the host's ``open_channel`` raises as ``DTXNsError`` right away.
    """

    async def _on_channel_request(self, code: int, identifier: str) -> NSError | None:
        device = self.ctx.get("device")
        refused = identifier in (SysmontapDevice.IDENTIFIER, EnergyDevice.IDENTIFIER) and device is not None \
            and device.faults.active("instruments_refused")
        if refused or (identifier not in self._services_cls and not identifier.startswith("dtxproxy:")):
            logger.info("refusing DVT channel %r", identifier)
            return NSError(2, "DTXMessage", {"NSLocalizedDescription":
                                             f"Unable to find a service for identifier {identifier!r}"})
        return await super()._on_channel_request(code, identifier)


DEVICE_CHANNELS: tuple[type[DTXService], ...] = (ProcessControlDevice, DeviceInfoDevice, SysmontapDevice,
                                                 EnergyDevice)


async def serve_dvt(device: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one DVT connection until the host closes it (the lockdown StartService handler)."""
    conn = DeviceDTXConnection(reader, writer)
    conn.sent_capabilities = dict(DEVICE_CAPABILITIES)
    conn.ctx["device"] = device
    conn.register_services(*DEVICE_CHANNELS)
    try:
        await asyncio.wait_for(conn.connect(), HANDSHAKE_TIMEOUT_S + 1)
        await conn.wait_disconnected()
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
        logger.info("DVT connection ended: %s", exc)
    finally:
        await conn.aclose()

"""The virtual fleet server: one asyncio process serving any number of virtual devices.

It listens as usbmuxd (TCP ``host:port`` or a Unix socket path: what pymobiledevice3
reads from ``USBMUXD_SOCKET_ADDRESS``) and, optionally, on a JSON-lines control socket
(``agents.virtual.control``). Its Python API (plug, unplug, inject_fault, ...) must be
called on its event loop; from another thread use ``agents.virtual.testing.FleetHandle``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import plistlib
import uuid
from collections.abc import Iterable
from typing import Any

from agents.virtual import tls, wire
from agents.virtual.device import VirtualDevice
from agents.virtual.faults import Chaos, normalize
from agents.virtual.services import CORE_DEVICE_PROXY, Handler, default_services
from agents.virtual.tunnel import serve_core_device_proxy
from agents.virtual.usbmuxd import PEER_GONE, UsbmuxClient, attached_event, detached_event

log = logging.getLogger("agents.virtual.server")
FIRST_SERVICE_PORT = 49152


class VirtualFleetServer:
    def __init__(self, devices: Iterable[VirtualDevice] = (), services: dict[str, Handler] | None = None,
                 chaos: Chaos | None = None):
        self.buid = str(uuid.uuid4()).upper()
        self.host_id = str(uuid.uuid4()).upper()
        self.escrow_bag = os.urandom(32)
        self.services: dict[str, Handler] = default_services() if services is None else services
        # the tunnel serves the whole registry behind it, so it is bound to this server
        self.services.setdefault(CORE_DEVICE_PROXY, functools.partial(serve_core_device_proxy, self))
        self.devices: dict[str, VirtualDevice] = {}  # by UDID
        self.devices_by_id: dict[int, VirtualDevice] = {}
        self.listeners: set[asyncio.StreamWriter] = set()
        self.value_overrides: dict[tuple[str, str], dict[str, Any]] = {}
        self.chaos = chaos
        # (udid, kind, keyword arguments of inject_fault): faults a fleet file declares, applied at start
        self.initial_faults: list[tuple[str, str, dict[str, Any]]] = []
        self.usbmux_address: str | None = None
        self.control_address: str | None = None
        self._service_ports: dict[tuple[int, int], str] = {}
        self._port_counter = itertools.cycle(range(FIRST_SERVICE_PORT, 65536))
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task] = set()
        self._chaos_task: asyncio.Task | None = None
        self._next_devid = itertools.count(1)
        self._device_list: bytes | None = None  # encoded ListDevices reply, until a device comes or goes
        for device in devices:
            self.add_device(device, announce=False)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, listen: str = "127.0.0.1:0", control: str | None = None) -> None:
        """Listen as usbmuxd on ``listen`` (``host:port``, port 0 = any free, or a socket path)."""
        server, self.usbmux_address = await _listen(self._on_usbmux, listen)
        self._servers.append(server)
        if control is not None:
            from agents.virtual.control import ControlServer

            cserver, self.control_address = await _listen(ControlServer(self).handle, control)
            self._servers.append(cserver)
        tls.server_context()  # make the key now, not on the first client's clock
        for udid, kind, kw in self.initial_faults:
            self.inject_fault(udid, kind, **kw)
        if self.chaos is not None:
            self.start_chaos(self.chaos)
        log.info("listening", extra={"fields": {"usbmux": self.usbmux_address, "control": self.control_address,
                                                 "devices": len(self.devices)}})

    async def stop(self) -> None:
        self.stop_chaos()
        for server in self._servers:
            server.close()
        for writer in list(self.listeners):
            writer.transport.abort()
        for device in self.devices.values():
            self._drop_connections(device)
            for proc in list(device.processes.values()):
                device.kill(proc.pid)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._servers.clear()
        if self.usbmux_address and ":" not in self.usbmux_address:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.usbmux_address)

    async def _on_usbmux(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await UsbmuxClient(self, reader, writer).serve()
        except PEER_GONE:
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("usbmux connection failed")
        finally:
            self._tasks.discard(task)
            await wire.close_writer(writer)

    # -- devices -------------------------------------------------------------------------
    def add_device(self, device: VirtualDevice, announce: bool = True) -> VirtualDevice:
        if device.udid in self.devices:
            raise ValueError(f"duplicate UDID {device.udid} ({device.name})")
        device.devid = next(self._next_devid)
        device.pair_record = self.pair_record_for(device)
        device.trusted_hosts.add(self.host_id)
        self.devices[device.udid] = device
        self.devices_by_id[device.devid] = device
        self._device_list = None
        if announce and device.attached:
            self._broadcast(attached_event(device))
        return device

    def pair_record_for(self, device: VirtualDevice) -> dict[str, Any]:
        ident = tls.identity()
        return {
            "HostID": self.host_id, "SystemBUID": self.buid, "WiFiMACAddress": device.lockdown_values()["WiFiAddress"],
            "HostCertificate": ident.cert_pem, "HostPrivateKey": ident.key_pem,
            "DeviceCertificate": ident.cert_pem, "RootCertificate": ident.cert_pem,
            "RootPrivateKey": ident.key_pem, "EscrowBag": self.escrow_bag,
        }

    def device(self, udid: str) -> VirtualDevice:
        try:
            return self.devices[udid]
        except KeyError:
            raise KeyError(f"no virtual device {udid!r}") from None

    def attached_devices(self) -> list[VirtualDevice]:
        return [d for d in self.devices.values() if d.attached]

    def device_list_plist(self) -> bytes:
        """The ListDevices reply body; encoding 1,000 devices costs ~0.1 s, so it is kept."""
        if self._device_list is None:
            self._device_list = plistlib.dumps({"DeviceList": [attached_event(d) for d in self.attached_devices()]})
        return self._device_list

    def unplug(self, udid: str) -> None:
        device = self.device(udid)
        if not device.attached:
            return
        device.attached = False
        self._drop_connections(device)
        self._service_ports = {k: v for k, v in self._service_ports.items() if k[0] != device.devid}
        self._broadcast(detached_event(device))
        log.info("unplug", extra={"fields": {"udid": udid}})

    def plug(self, udid: str) -> None:
        device = self.device(udid)
        if device.attached:
            return
        device.attached = True
        self._broadcast(attached_event(device))
        log.info("plug", extra={"fields": {"udid": udid}})

    def reboot(self, udid: str, down_s: float = 1.0) -> None:
        """Detach, lose every process and connection, come back after ``down_s`` as a new boot
        (new boot session, new tunnel address)."""
        device = self.device(udid)
        self.unplug(udid)
        device.rebooted()
        asyncio.get_running_loop().call_later(down_s, self.plug, udid)

    def _drop_connections(self, device: VirtualDevice) -> None:
        for writer in list(device.connections):
            writer.transport.abort()
        device.connections.clear()
        self._drop_tunnels(device)

    def _drop_tunnels(self, device: VirtualDevice) -> None:
        for writer in list(device.tunnels):
            writer.transport.abort()
        device.tunnels.clear()

    def _broadcast(self, event: dict[str, Any]) -> None:
        self._device_list = None  # every Attached/Detached changes the list
        frame = wire.usbmux_plist(event, 0)
        for writer in list(self.listeners):
            if writer.is_closing():
                self.listeners.discard(writer)
            else:
                writer.write(frame)

    # -- services ------------------------------------------------------------------------
    def open_service_port(self, device: VirtualDevice, service: str) -> int:
        for _ in range(65536 - FIRST_SERVICE_PORT):
            port = next(self._port_counter)
            if (device.devid, port) not in self._service_ports:
                self._service_ports[(device.devid, port)] = service
                return port
        raise RuntimeError("no free service port")

    def take_service_port(self, device: VirtualDevice, port: int) -> str | None:
        return self._service_ports.pop((device.devid, port), None)

    # -- faults --------------------------------------------------------------------------
    def inject_fault(self, udid: str, kind: str, count: int | None = None, duration_s: float | None = None,
                     **params: Any) -> dict[str, Any]:
        """Inject a fault (see ``agents.virtual.faults.FAULT_KINDS``); returns its description."""
        device = self.device(udid)
        kind, params = normalize(kind, params)
        log.info("fault", extra={"fields": {"udid": udid, "fault": kind, "count": count, "duration_s": duration_s,
                                             **params}})
        if kind == "unplug":
            self.unplug(udid)
            if duration_s is not None:
                asyncio.get_running_loop().call_later(float(duration_s), self.plug, udid)
            return {"kind": kind, "params": params, "count": None, "expires_in_s": duration_s}
        fault = device.faults.add(kind, count=count, duration_s=duration_s, **params)
        if kind == "tunnel_drop":
            self._drop_tunnels(device)
            return {"kind": kind, "params": params, "count": None, "expires_in_s": None}
        if kind == "reboot":
            self.reboot(udid, float(duration_s if duration_s is not None else 1.0))
            return {"kind": kind, "params": params, "count": None, "expires_in_s": duration_s}
        if kind == "not_paired":
            # a device that stopped trusting the host drops its sessions, as after "Trust" is revoked
            self._drop_connections(device)
        return fault.as_dict()

    def clear_faults(self, udid: str, kind: str | None = None) -> None:
        device = self.device(udid)
        if kind is not None and normalize(kind, {})[0] == "unplug":
            self.plug(udid)
            return
        device.faults.clear(kind)
        if kind is None:
            self.plug(udid)

    def start_chaos(self, chaos: Chaos) -> None:
        self.stop_chaos()
        self.chaos = chaos

        def inject(udid: str, kind: str, **kw: Any) -> None:
            if udid in self.devices:
                self.inject_fault(udid, kind, **kw)

        self._chaos_task = asyncio.get_running_loop().create_task(
            chaos.run(lambda: list(self.devices), inject), name="chaos")

    def stop_chaos(self) -> None:
        if self._chaos_task is not None:
            self._chaos_task.cancel()
            self._chaos_task = None

    def snapshot(self) -> list[dict[str, Any]]:
        return [d.summary() for d in self.devices.values()]


async def _listen(callback: Any, address: str) -> tuple[asyncio.base_events.Server, str]:
    """Start a stream server on ``host:port`` or a Unix socket path; return it and its real address."""
    if ":" in address:
        host, port = address.rsplit(":", 1)
        server = await asyncio.start_server(callback, host, int(port))
        bound = server.sockets[0].getsockname()
        return server, f"{bound[0]}:{bound[1]}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(address)
    server = await asyncio.start_unix_server(callback, address)
    return server, address

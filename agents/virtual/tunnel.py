"""``com.apple.internal.devicecompute.CoreDeviceProxy``: the iOS 17.4+ developer tunnel, device side.

The host (pymobiledevice3 ``CoreDeviceTunnelProxy``, what ``UserspaceRsdTunnel`` and tunneld
use over USB) starts this lockdown service and sends a CDTunnel packet: ``CDTunnel`` magic,
a big-endian u16 length and JSON ``{"type": "clientHandshakeRequest", "mtu": 16000}``. The
device answers ``serverHandshakeResponse`` with the host's address on the link
(``clientParameters``: address, netmask, mtu), its own ``serverAddress`` and the
``serverRSDPort``. From then on the same stream carries bare IPv6 packets both ways (each
packet's own header says how long it is). Behind the device address: ``agents.virtual.tcp``
terminating TCP, RSD on 58783 and every service of the registry on its own port.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import struct
from typing import TYPE_CHECKING, Any

from agents.virtual import rsd
from agents.virtual.lockdown import LockdownSession
from agents.virtual.services import LOCKDOWN_RSD_NAMES, Handler, rsd_names
from agents.virtual.services.developer import service_available
from agents.virtual.tcp import IPV6_HEADER, StreamHandler, TcpEndpoint

if TYPE_CHECKING:
    from agents.virtual.device import VirtualDevice
    from agents.virtual.server import VirtualFleetServer

log = logging.getLogger("agents.virtual.tunnel")

MAGIC = b"CDTunnel"
MAX_MTU = 16000  # what devices grant: the host asks for 16000
NETMASK = "ffff:ffff:ffff:ffff::"
FIRST_PORT = 49152  # services on the tunnel address, like a device's ephemeral listeners


class TunnelRefused(ConnectionError):
    """The host's first packet was not a CDTunnel handshake request."""


def service_ports(server: VirtualFleetServer) -> dict[str, tuple[int, Handler | None, bool]]:
    """RSD name -> (port, handler or None for the remote lockdown, needs RSDCheckin)."""
    entries: dict[str, tuple[Handler | None, bool]] = {
        **rsd_names(server.services), **{name: (None, True) for name in LOCKDOWN_RSD_NAMES}}
    return {name: (FIRST_PORT + i, handler, checkin)
            for i, (name, (handler, checkin)) in enumerate(sorted(entries.items()))}


def listeners(server: VirtualFleetServer, device: VirtualDevice) -> tuple[dict[int, StreamHandler], dict[str, int]]:
    """What listens on the tunnel address: RSD and each service (bound to this device)."""
    table = service_ports(server)
    ports = {name: port for name, (port, _h, _c) in table.items()}
    bound: dict[int, StreamHandler] = {}
    for name, (port, handler, checkin) in table.items():
        if handler is None:  # the remote lockdown: values without a session, no pairing
            async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await LockdownSession(server, device, reader, writer).serve()
            svc: StreamHandler = serve
        else:
            svc = _gated(name, device, functools.partial(handler, device))
        bound[port] = rsd.with_checkin(name, svc) if checkin else svc

    def info() -> dict[str, Any]:
        # DVT is listed only while the developer image is mounted and Developer Mode is on
        return rsd.peer_info(device, {n: p for n, p in ports.items() if service_available(device, n)})

    def delay() -> float:
        fault = device.faults.take("rsd_slow")
        return 0.0 if fault is None else float(fault.params["delay_s"])

    bound[rsd.RSD_PORT] = functools.partial(rsd.serve_rsd, info, delay_s=delay)
    return bound, ports


def _gated(name: str, device: VirtualDevice, serve: StreamHandler) -> StreamHandler:
    """A service that closes at once while the device does not offer it (no developer image)."""

    async def gated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if service_available(device, name):
            await serve(reader, writer)

    return gated


async def serve_core_device_proxy(server: VirtualFleetServer, device: VirtualDevice,
                                  reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The lockdown service handler: handshake, then IPv6 packets until either side closes."""
    request = await _read_cdtunnel(reader)
    if request.get("type") != "clientHandshakeRequest":
        raise TunnelRefused(f"unexpected CDTunnel request {request.get('type')!r}")
    mtu = max(1280, min(int(request.get("mtu", 1280)), MAX_MTU))
    server_addr, client_addr = device.tunnel_addresses()
    reply = {"type": "serverHandshakeResponse", "serverAddress": server_addr, "serverRSDPort": rsd.RSD_PORT,
             "clientParameters": {"address": client_addr, "netmask": NETMASK, "mtu": mtu}}
    body = json.dumps(reply).encode()
    writer.write(MAGIC + struct.pack(">H", len(body)) + body)
    await writer.drain()
    bound, _ports = listeners(server, device)
    endpoint = TcpEndpoint(server_addr, mtu, writer.write, bound)
    device.tunnels.add(writer)
    log.info("tunnel up", extra={"fields": {"udid": device.udid, "address": server_addr, "mtu": mtu}})
    try:
        while True:
            head = await reader.readexactly(IPV6_HEADER.size)
            (length,) = struct.unpack_from(">H", head, 4)
            endpoint.receive(head + await reader.readexactly(length))
            if writer.transport.get_write_buffer_size() > 4 * 1024 * 1024:
                await writer.drain()  # the host stopped reading: stop taking its packets too
    except asyncio.IncompleteReadError:
        pass  # the host closed the tunnel
    finally:
        device.tunnels.discard(writer)
        endpoint.close()
        log.info("tunnel down", extra={"fields": {"udid": device.udid, "address": server_addr}})


async def _read_cdtunnel(reader: asyncio.StreamReader) -> dict[str, Any]:
    head = await reader.readexactly(len(MAGIC) + 2)
    if head[:len(MAGIC)] != MAGIC:
        raise TunnelRefused("no CDTunnel magic")
    (length,) = struct.unpack_from(">H", head, len(MAGIC))
    doc = json.loads(await reader.readexactly(length))
    if not isinstance(doc, dict):
        raise TunnelRefused("CDTunnel body is not a JSON object")
    return doc

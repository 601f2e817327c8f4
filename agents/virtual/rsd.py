"""RemoteServiceDiscovery, device side: RemoteXPC over HTTP/2 on the tunnel's RSD port.

What the host (pymobiledevice3's ``RemoteXPCConnection``/``RemoteServiceDiscoveryService``)
does, and what this answers: the HTTP/2 preface and SETTINGS (answered with the device's
SETTINGS, a connection WINDOW_UPDATE and a SETTINGS ACK), the RemoteXPC stream set-up on
streams 1 and 3, then a ``Handshake`` message; the device replies with its own handshake
message, the peer info: ``Properties`` (identity: UniqueDeviceID, ProductType, OSVersion,
BuildVersion, UniqueChipID...) and ``Services`` (name -> Entitlement, Port as a string). The
connection stays open for as long as the host keeps it, as remoted's does.

Services listed there are plain TCP ports on the tunnel address. Lockdown-style ones
(``*.shim.remote``, the remote lockdown itself) start with an ``RSDCheckin`` exchange;
``com.apple.instruments.dtservicehub`` speaks DTX straight away.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bytestruct import TruncatedDataError
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, PingFrame, SettingsFrame, WindowUpdateFrame
from pymobiledevice3.remote.xpc_message import XpcUInt64Type, XpcWrapper, create_xpc_wrapper, decode_xpc_object

from agents.virtual import wire

if TYPE_CHECKING:
    from agents.virtual.device import VirtualDevice

log = logging.getLogger("agents.virtual.rsd")

RSD_PORT = 58783  # remoted's listener on the tunnel (pymobiledevice3 RSD_PORT)
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ROOT_CHANNEL = 1
MAX_FRAME = 16384  # the HTTP/2 default SETTINGS_MAX_FRAME_SIZE the host never raises
WINDOW = 1024 * 1024
REMOTE_XPC_VERSION_FLAGS = 0x0100000000000006
ENTITLEMENTS = {  # what a real device lists as the entitlement of these services
    "com.apple.instruments.dtservicehub": "com.apple.private.dt.instruments.dtservicehub",
}
DEFAULT_ENTITLEMENT = "com.apple.mobile.lockdown.remote.trusted"


def peer_info(device: VirtualDevice, ports: dict[str, int]) -> dict[str, Any]:
    """The device's handshake reply: its properties and every service with its port."""
    values = device.lockdown_values()
    properties = {
        "AppleInternal": False,
        "BoardId": XpcUInt64Type(device.ecid % 16),
        "BootSessionUUID": device.boot_session,
        "BuildVersion": values["BuildVersion"],
        "CPUArchitecture": values["CPUArchitecture"],
        "CertificateProductionStatus": True,
        "ChipID": XpcUInt64Type(values["ChipID"]),
        "DeviceClass": values["DeviceClass"],
        "DeviceColor": values["DeviceColor"],
        "DeviceSupportsLockdown": True,
        "EffectiveProductionStatusAp": True,
        "EffectiveSecurityModeAp": True,
        "HWModelStr": values["HardwareModel"],
        "HardwarePlatform": values["HardwarePlatform"],
        "HumanReadableProductVersionString": device.product_version,
        "IsUIBuild": True,
        "IsVirtualDevice": False,  # what a phone says; the simulation label is the next key
        "BenchfarmSimulated": True,  # not an Apple key: this device's numbers are a simulation
        "ModelNumber": values["ModelNumber"],
        "OSInstallEnvironment": False,
        "OSVersion": device.product_version,
        "ProductName": "iPhone OS",
        "ProductType": device.product_type,
        "RegionInfo": values["RegionInfo"],
        "ReleaseType": "",
        "RemoteXPCVersionFlags": XpcUInt64Type(REMOTE_XPC_VERSION_FLAGS),
        "SecurityDomain": XpcUInt64Type(1),
        "SensitivePropertiesVisible": True,
        "SerialNumber": values["SerialNumber"],
        "SigningFuse": True,
        "StoreDemoMode": False,
        "SupplementalBuildVersion": values["BuildVersion"],
        "ThinningProductType": device.product_type,
        "UniqueChipID": XpcUInt64Type(device.ecid),
        "UniqueDeviceID": device.udid,
    }
    services = {name: {"Entitlement": ENTITLEMENTS.get(name, DEFAULT_ENTITLEMENT), "Port": str(port)}
                for name, port in sorted(ports.items())}
    return {"MessageType": "Handshake", "MessagingProtocolVersion": XpcUInt64Type(7),
            "Properties": properties, "Services": services, "UUID": uuid.UUID(device.boot_session)}


async def serve_rsd(info: Callable[[], dict[str, Any]], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, delay_s: Callable[[], float] = lambda: 0.0) -> None:
    """One RemoteXPC connection on the RSD port; ``info()`` builds the peer info when asked.
    ``delay_s()``: seconds to wait before answering the handshake (the slow-RSD fault)."""
    preface = await reader.readexactly(len(HTTP2_PREFACE))
    if preface != HTTP2_PREFACE:
        raise wire.FrameError("not an HTTP/2 client preface")
    buffers: dict[int, bytes] = {}
    next_id = 0  # the listener numbers its messages even (RemoteXPC parity rule)
    while True:
        frame = await _read_frame(reader)
        if isinstance(frame, GoAwayFrame):
            return
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            await _send(writer, SettingsFrame(settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 100,
                                                        SettingsFrame.INITIAL_WINDOW_SIZE: WINDOW}),
                        WindowUpdateFrame(stream_id=0, window_increment=WINDOW), SettingsFrame(flags=["ACK"]))
        elif isinstance(frame, PingFrame) and "ACK" not in frame.flags:
            await _send(writer, PingFrame(flags=["ACK"], opaque_data=frame.opaque_data))
        elif isinstance(frame, DataFrame) and frame.data:
            buf = buffers.get(frame.stream_id, b"") + frame.data
            try:
                message = XpcWrapper.parse(buf)
            except TruncatedDataError:
                buffers[frame.stream_id] = buf
                continue
            buffers.pop(frame.stream_id, None)
            if message.payload is None:
                continue
            body = decode_xpc_object(message.payload)
            if isinstance(body, dict) and body.get("MessageType") == "Handshake":
                delay = delay_s()
                if delay > 0:
                    await asyncio.sleep(delay)
                data = create_xpc_wrapper(info(), message_id=next_id)
                next_id += 2
                await _send(writer, *(DataFrame(stream_id=ROOT_CHANNEL, data=data[i:i + MAX_FRAME])
                                      for i in range(0, len(data), MAX_FRAME)))


async def _read_frame(reader: asyncio.StreamReader) -> Frame:
    frame, length = Frame.parse_frame_header(memoryview(await reader.readexactly(9)))
    frame.parse_body(memoryview(await reader.readexactly(length)))
    return frame


async def _send(writer: asyncio.StreamWriter, *frames: Frame) -> None:
    for frame in frames:
        writer.write(frame.serialize())
    await writer.drain()


Service = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def with_checkin(name: str, serve: Service) -> Service:
    """A lockdown-style service over RSD: answer the host's RSDCheckin, then serve as usual."""

    async def checked_in(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await wire.read_plist(reader)
        if request is None:
            return
        if request.get("Request") != "RSDCheckin":
            await wire.send_plist(writer, {"Request": request.get("Request", ""), "Error": "InvalidRequest"})
            return
        await wire.send_plist(writer, {"Request": "RSDCheckin"})
        await wire.send_plist(writer, {"Request": "StartService", "Service": name})
        await serve(reader, writer)

    return checked_in

"""The usbmuxd side of one client connection (plist protocol, version 1).

pymobiledevice3 opens a socket per operation: a ReadBUID probe, then ListDevices,
ReadPairRecord, Listen (a stream of Attached/Detached events) or Connect. After a
successful Connect the same socket is a raw pipe to the device port: lockdownd on
62078, or a port StartService handed out. Replies echo the request's tag; events
carry tag 0. The port in Connect arrives byte-swapped (htons).
"""

from __future__ import annotations

import asyncio
import logging
import plistlib
import socket
import ssl
from typing import TYPE_CHECKING, Any

from agents.virtual import tls, wire
from agents.virtual.device import LOCKDOWN_PORT, VirtualDevice
from agents.virtual.lockdown import LockdownSession

if TYPE_CHECKING:
    from agents.virtual.server import VirtualFleetServer

RESULT_OK, RESULT_BADCOMMAND, RESULT_BADDEV, RESULT_CONNREFUSED, RESULT_BADVERSION = 0, 1, 2, 3, 6
# Errors that only mean the peer went away (or an unplug cut the pipe).
PEER_GONE = (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, wire.FrameError, OSError)

log = logging.getLogger("agents.virtual.usbmuxd")


def attached_event(device: VirtualDevice) -> dict[str, Any]:
    return {
        "MessageType": "Attached",
        "DeviceID": device.devid,
        "Properties": {
            "ConnectionSpeed": 480000000,
            "ConnectionType": "USB",
            "DeviceID": device.devid,
            "LocationID": 0x14100000 + device.devid,
            "ProductID": 0x12A8,
            "SerialNumber": device.udid,
            "USBSerialNumber": device.udid.replace("-", ""),
        },
    }


def detached_event(device: VirtualDevice) -> dict[str, Any]:
    return {"MessageType": "Detached", "DeviceID": device.devid}


class UsbmuxClient:
    def __init__(self, server: VirtualFleetServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server, self.reader, self.writer = server, reader, writer

    async def send(self, payload: dict[str, Any], tag: int) -> None:
        self.writer.write(wire.usbmux_plist(payload, tag))
        await self.writer.drain()

    async def result(self, number: int, tag: int) -> None:
        await self.send({"MessageType": "Result", "Number": number}, tag)

    async def serve(self) -> None:
        while (frame := await wire.read_usbmux(self.reader)) is not None:
            version, message, tag, body = frame
            if version != wire.USBMUX_VERSION_PLIST or message != wire.USBMUX_MESSAGE_PLIST:
                await self.result(RESULT_BADVERSION, tag)
                continue
            try:
                request = plistlib.loads(body)
            except Exception:
                await self.result(RESULT_BADCOMMAND, tag)
                continue
            kind = request.get("MessageType")
            if kind == "Listen":
                await self.result(RESULT_OK, tag)
                await self.listen()
                return
            if kind == "Connect":
                await self.connect(request, tag)
                return
            if kind == "ListDevices":
                self.writer.write(wire.usbmux_frame(self.server.device_list_plist(), tag))
                await self.writer.drain()
                continue
            await self.send(self.simple(kind, request), tag)

    def simple(self, kind: str, request: dict[str, Any]) -> dict[str, Any]:
        srv = self.server
        if kind == "ReadBUID":
            return {"BUID": srv.buid}
        device = srv.devices.get(request.get("PairRecordID", ""))
        if kind == "ReadPairRecord":
            if device is None or not device.paired or device.pair_record is None:
                return {"MessageType": "Result", "Number": RESULT_BADDEV}
            return {"PairRecordData": plistlib.dumps(device.pair_record)}
        if kind == "SavePairRecord" and device is not None:
            device.pair_record = plistlib.loads(request["PairRecordData"])
            return {"MessageType": "Result", "Number": RESULT_OK}
        if kind == "DeletePairRecord" and device is not None:
            device.pair_record = None
            return {"MessageType": "Result", "Number": RESULT_OK}
        return {"MessageType": "Result", "Number": RESULT_BADCOMMAND}

    async def listen(self) -> None:
        srv = self.server
        srv.listeners.add(self.writer)
        try:
            for device in srv.attached_devices():
                self.writer.write(wire.usbmux_plist(attached_event(device), 0))
            await self.writer.drain()
            while await self.reader.read(4096):  # the client only closes; anything else is ignored
                pass
        finally:
            srv.listeners.discard(self.writer)

    async def connect(self, request: dict[str, Any], tag: int) -> None:
        srv = self.server
        device = srv.devices_by_id.get(request.get("DeviceID", -1))
        port = socket.ntohs(int(request.get("PortNumber", 0)) & 0xFFFF)
        if device is None or not device.attached:
            await self.result(RESULT_BADDEV, tag)
            return
        service = None if port == LOCKDOWN_PORT else srv.take_service_port(device, port)
        if port != LOCKDOWN_PORT and service is None:
            await self.result(RESULT_CONNREFUSED, tag)
            return
        await self.result(RESULT_OK, tag)
        device.connections.add(self.writer)
        fields = {"udid": device.udid, "port": port, "service": service or "lockdownd"}
        log.info("connect", extra={"fields": fields})
        try:
            if service is None:
                await LockdownSession(srv, device, self.reader, self.writer).serve()
            else:
                if device.tls:
                    await self.writer.start_tls(tls.server_context())
                await srv.services[service](device, self.reader, self.writer)
        except PEER_GONE as exc:
            log.info("connection ended", extra={"fields": {**fields, "reason": repr(exc)[:200]}})
        finally:
            device.connections.discard(self.writer)

"""os_trace_relay (``com.apple.os_trace_relay``): the process list and the binary live log stream.

Requests are one plist each (4-byte big-endian length + XML), as every lockdown service.
``PidList``: one status byte, then a length-prefixed plist ``{Status, Payload: {pid: {ProcessName}}}``.
``StartActivity`` (``Pid`` -1 for all, or one pid): a 4-byte little-endian width, the
reply's length in that many little-endian bytes and the reply plist; then each log entry as
``0x02``, a u32 little-endian length and the binary record pymobiledevice3's
``parse_syslog_entry`` reads (fixed header, then the NUL-terminated filename, image name,
message, subsystem and category). Anything else is answered ``RequestFailed``.
"""

from __future__ import annotations

import asyncio
import hashlib
import plistlib
import struct
import uuid
from typing import Any

from pymobiledevice3.services.os_trace import SyslogLogLevel, _SyslogRecordHeader

from agents.virtual import wire
from agents.virtual.instruments import processes as ptable
from agents.virtual.instruments.deviceinfo import mach_ticks
from agents.virtual.services.logbus import Entry, stream

ENTRY_MARKER = b"\x02"


def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.md5(text.encode()).digest())  # noqa: S324 - a stable id, not security


def _cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def encode_entry(entry: Entry, boot_time: float) -> bytes:
    image = entry.image or entry.path
    image_b, message_b = _cstr(image), _cstr(entry.message)
    sub_b = _cstr(entry.subsystem) if entry.subsystem else b""
    cat_b = _cstr(entry.category) if entry.category else b""
    seconds = int(entry.time)
    header = _SyslogRecordHeader(
        _unknown0=b"\x00" * 9, pid=entry.pid, procid=entry.pid, process_image_uuid=_uuid(entry.path),
        _unknown1=b"\x00" * 18, seconds=seconds, _unknown2=0, microseconds=int((entry.time - seconds) * 1e6),
        _unknown3=0, level=SyslogLogLevel(entry.level), _unknown4=b"\x00" * 6,
        mach_timestamp=mach_ticks(entry.time - boot_time),
        thread_id=entry.pid * 16 + 3, image_uuid=_uuid(image), image_name_size=len(image_b),
        message_size=len(message_b), _unknown5=0, sender_image_offset=0x1F00 + len(entry.message) * 4,
        subsystem_size=len(sub_b), category_size=len(cat_b), _unknown6=0,
    )
    return header.build() + _cstr(entry.path) + image_b + message_b + sub_b + cat_b


def pid_list(device: Any) -> dict[str, Any]:
    return {"Status": "RequestSuccessful",
            "Payload": {str(p.pid): {"ProcessName": p.name} for p in ptable.processes(device)}}


async def serve_os_trace_relay(device: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await wire.read_plist(reader)
    if request is None:
        return
    kind = request.get("Request")
    if kind == "PidList":
        body = plistlib.dumps(pid_list(device))
        writer.write(b"\x01" + struct.pack(">I", len(body)) + body)
        await writer.drain()
        return
    if kind != "StartActivity":
        body = plistlib.dumps({"Status": "RequestFailed", "Error": f"unsupported request {kind!r}"})
        writer.write(b"\x01" + struct.pack(">I", len(body)) + body)
        await writer.drain()
        return
    pid = int(request.get("Pid", -1))
    body = plistlib.dumps({"Status": "RequestSuccessful"})
    writer.write(struct.pack("<I", 4) + struct.pack("<I", len(body)) + body)
    await writer.drain()
    await stream(device, reader, writer, _framer(pid, ptable.boot_time(device)))


def _framer(pid: int, booted: float) -> Any:
    def frame(entry: Entry) -> bytes | None:
        if pid != -1 and entry.pid != pid:
            return None
        record = encode_entry(entry, booted)
        return ENTRY_MARKER + struct.pack("<I", len(record)) + record

    return frame

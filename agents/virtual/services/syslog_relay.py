"""syslog_relay (``com.apple.syslog_relay``): the live system log as text lines.

Each line is ``Mon DD HH:MM:SS <device> <process>[<pid>] <Level>: <message>`` followed by
``\\n\\x00``, the separator pymobiledevice3's ``SyslogService.watch`` splits on. The
connection streams until the host hangs up; nothing is sent before it connected.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agents.virtual.services.logbus import ERROR, FAULT, Entry, stream

LEVEL_NAMES = {ERROR: "Error", FAULT: "Fault"}


def format_line(device_name: str, entry: Entry) -> bytes:
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(entry.time))
    proc = f"{entry.process}({entry.image})" if entry.image else entry.process
    level = LEVEL_NAMES.get(entry.level, "Notice")
    return f"{stamp} {device_name} {proc}[{entry.pid}] <{level}>: {entry.message}\n\x00".encode()


async def serve_syslog_relay(device: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await stream(device, reader, writer, lambda entry: format_line(device.name, entry))

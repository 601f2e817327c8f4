"""Wire formats shared by the virtual device's servers: usbmux frames and length-prefixed plists.

usbmux: little-endian header (total length incl. header, version, message type, tag) + body;
version 1 / message 8 carries an XML plist. lockdownd and the plist services behind it
(installation_proxy, house_arrest, diagnostics_relay): a 4-byte big-endian length + XML plist.
"""

from __future__ import annotations

import asyncio
import contextlib
import plistlib
import struct
from typing import Any

USBMUX_HEADER = struct.Struct("<IIII")  # length, version, message, tag
USBMUX_VERSION_PLIST = 1
USBMUX_MESSAGE_PLIST = 8
# A request bigger than this is not a usbmux or lockdown message but a broken client.
MAX_FRAME = 64 * 1024 * 1024


class FrameError(ConnectionError):
    """The peer sent something that is not a valid frame."""


async def read_usbmux(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes] | None:
    """One usbmux frame as (version, message, tag, body); None on a clean close."""
    try:
        head = await reader.readexactly(USBMUX_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("truncated usbmux header") from None
    length, version, message, tag = USBMUX_HEADER.unpack(head)
    if not USBMUX_HEADER.size <= length <= MAX_FRAME:
        raise FrameError(f"bad usbmux frame length {length}")
    body = await reader.readexactly(length - USBMUX_HEADER.size)
    return version, message, tag, body


def usbmux_plist(payload: dict[str, Any], tag: int) -> bytes:
    return usbmux_frame(plistlib.dumps(payload), tag)


def usbmux_frame(body: bytes, tag: int) -> bytes:
    """A usbmux plist frame around an already encoded plist."""
    return USBMUX_HEADER.pack(USBMUX_HEADER.size + len(body), USBMUX_VERSION_PLIST, USBMUX_MESSAGE_PLIST, tag) + body


async def read_plist(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """One length-prefixed plist (big-endian length); None on a clean close."""
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("truncated plist length") from None
    (length,) = struct.unpack(">I", head)
    if length > MAX_FRAME:
        raise FrameError(f"plist frame of {length} bytes")
    body = await reader.readexactly(length)
    try:
        doc = plistlib.loads(body)
    except Exception as exc:  # plistlib raises several types for garbage
        raise FrameError(f"not a plist: {exc}") from None
    if not isinstance(doc, dict):
        raise FrameError("plist root is not a dictionary")
    return doc


def encode_plist(payload: dict[str, Any]) -> bytes:
    body = plistlib.dumps(payload)
    return struct.pack(">I", len(body)) + body


async def send_plist(writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
    writer.write(encode_plist(payload))
    await writer.drain()


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close without hanging on a peer that stopped reading (TLS close can wait for it)."""
    with contextlib.suppress(Exception):
        writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), timeout=1.0)
    with contextlib.suppress(Exception):
        writer.transport.abort()

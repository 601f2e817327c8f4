"""AFC (com.apple.afc) and house_arrest (AFC on an app container).

Packets: 40-byte little-endian header (magic ``CFA6LPAA``, entire_length, this_length,
packet_num, operation) then payload. Replies carry the request's packet_num and are a
STATUS (u64 error, 0 = ok) or a DATA / FILE_OPEN_RES / FILE_TELL_RES packet. A WRITE's
``this_length`` is 48: header + handle, the bytes to write follow.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from agents.virtual import wire
from agents.virtual.device import DISK_BYTES, AppNotInstalledError, VirtualDevice
from agents.virtual.vfs import File, FsError, Tree, now_ns

MAGIC = b"CFA6LPAA"
HEADER = struct.Struct("<8sQQQQ")
# opcodes (pymobiledevice3.services.afc.AfcOpcode)
STATUS, DATA, READ_DIR, REMOVE_PATH, MAKE_DIR, GET_FILE_INFO, GET_DEVINFO = 1, 2, 3, 8, 9, 0xA, 0xB
FILE_OPEN, FILE_OPEN_RES, READ, WRITE, FILE_SEEK, FILE_TELL, FILE_TELL_RES = 0xD, 0xE, 0xF, 0x10, 0x11, 0x12, 0x13
FILE_CLOSE, FILE_SET_SIZE, RENAME_PATH, FILE_LOCK, SET_FILE_TIME = 0x14, 0x15, 0x18, 0x1B, 0x1E
REMOVE_PATH_AND_CONTENTS = 0x22
# errors (AfcError)
OK, INVALID_ARG, OP_NOT_SUPPORTED, UNKNOWN_PACKET = 0, 7, 15, 6
# open modes: r, r+, w, w+, a, a+ -> (create, truncate, append)
OPEN_MODES = {1: (False, False, False), 2: (True, False, False), 3: (True, True, False),
              4: (True, True, False), 5: (True, False, True), 6: (True, False, True)}

log = logging.getLogger("agents.virtual.afc")


class _Handle:
    def __init__(self, node: File, append: bool):
        self.node, self.append, self.pos = node, append, 0


def _cstrings(payload: bytes) -> list[str]:
    return payload.decode("utf-8", "replace").split("\x00")


class AfcSession:
    """One AFC connection over a tree; handles are per connection, as on a device."""

    def __init__(self, device: VirtualDevice, tree: Tree):
        self.device, self.tree = device, tree
        self.handles: dict[int, _Handle] = {}
        self._next_handle = 1

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readexactly(HEADER.size)
            except asyncio.IncompleteReadError:
                return
            magic, entire, _this, num, op = HEADER.unpack(head)
            if magic != MAGIC or entire < HEADER.size or entire > wire.MAX_FRAME:
                raise wire.FrameError(f"bad AFC header {head!r}")
            payload = await reader.readexactly(entire - HEADER.size)
            try:
                reply_op, data = self.dispatch(op, payload)
            except FsError as exc:
                reply_op, data = STATUS, struct.pack("<Q", exc.code)
            slow = self.device.faults.active("slow_afc")
            if slow:
                await asyncio.sleep(slow.params["delay_s"])
            writer.write(HEADER.pack(MAGIC, HEADER.size + len(data), HEADER.size + len(data), num, reply_op) + data)
            await writer.drain()

    def dispatch(self, op: int, payload: bytes) -> tuple[int, bytes]:
        handler = _OPS.get(op)
        if handler is None:
            log.info("unsupported AFC op", extra={"fields": {"udid": self.device.udid, "op": op}})
            return STATUS, struct.pack("<Q", OP_NOT_SUPPORTED)
        result = handler(self, payload)
        if result is None:
            return STATUS, struct.pack("<Q", OK)
        return result

    # -- operations: return None for a plain OK, else (reply opcode, data) -----------------
    def _read_dir(self, payload: bytes) -> tuple[int, bytes]:
        names = [".", "..", *self.tree.listdir(_cstrings(payload)[0])]
        return DATA, b"".join(n.encode() + b"\x00" for n in names)

    def _remove(self, payload: bytes) -> None:
        self.tree.remove(_cstrings(payload)[0])

    def _remove_all(self, payload: bytes) -> None:
        self.tree.remove(_cstrings(payload)[0], recursive=True)

    def _mkdir(self, payload: bytes) -> None:
        self.tree.makedirs(_cstrings(payload)[0])

    def _file_info(self, payload: bytes) -> tuple[int, bytes]:
        info = self.tree.stat(_cstrings(payload)[0])
        return DATA, b"".join(f"{k}\x00{v}\x00".encode() for k, v in info.items())

    def _device_info(self, _payload: bytes) -> tuple[int, bytes]:
        info = {"Model": self.device.product_type, "FSTotalBytes": DISK_BYTES,
                "FSFreeBytes": self.device.free_bytes(), "FSBlockSize": 4096}
        return DATA, b"".join(f"{k}\x00{v}\x00".encode() for k, v in info.items())

    def _open(self, payload: bytes) -> tuple[int, bytes]:
        (mode,) = struct.unpack_from("<Q", payload)
        if mode not in OPEN_MODES:
            raise FsError(INVALID_ARG, f"bad open mode {mode}")
        create, truncate, append = OPEN_MODES[mode]
        node = self.tree.open_file(_cstrings(payload[8:])[0], create=create, truncate=truncate)
        handle = self._next_handle
        self._next_handle += 1
        self.handles[handle] = _Handle(node, append)
        return FILE_OPEN_RES, struct.pack("<Q", handle)

    def _handle(self, payload: bytes) -> _Handle:
        (num,) = struct.unpack_from("<Q", payload)
        try:
            return self.handles[num]
        except KeyError:
            raise FsError(INVALID_ARG, f"bad file handle {num}") from None

    def _read(self, payload: bytes) -> tuple[int, bytes]:
        h = self._handle(payload)
        (size,) = struct.unpack_from("<Q", payload, 8)
        chunk = bytes(h.node.data[h.pos : h.pos + size])
        h.pos += len(chunk)
        return DATA, chunk

    def _write(self, payload: bytes) -> None:
        h = self._handle(payload)
        data = payload[8:]
        if h.append:
            h.pos = len(h.node.data)
        end = h.pos + len(data)
        if end > len(h.node.data):
            h.node.data.extend(b"\x00" * (end - len(h.node.data)))
        h.node.data[h.pos : end] = data
        h.pos = end
        h.node.mtime_ns = now_ns()

    def _seek(self, payload: bytes) -> None:
        h = self._handle(payload)
        whence, offset = struct.unpack_from("<Qq", payload, 8)
        base = {0: 0, 1: h.pos, 2: len(h.node.data)}.get(whence)
        if base is None or base + offset < 0:
            raise FsError(INVALID_ARG, "bad seek")
        h.pos = base + offset

    def _tell(self, payload: bytes) -> tuple[int, bytes]:
        return FILE_TELL_RES, struct.pack("<Q", self._handle(payload).pos)

    def _close(self, payload: bytes) -> None:
        self._handle(payload)
        del self.handles[struct.unpack_from("<Q", payload)[0]]

    def _set_size(self, payload: bytes) -> None:
        h = self._handle(payload)
        (size,) = struct.unpack_from("<Q", payload, 8)
        del h.node.data[size:]
        h.node.data.extend(b"\x00" * (size - len(h.node.data)))

    def _rename(self, payload: bytes) -> None:
        src, dst = _cstrings(payload)[:2]
        self.tree.rename(src, dst)

    def _lock(self, payload: bytes) -> None:
        self._handle(payload)

    def _set_time(self, payload: bytes) -> None:
        (mtime,) = struct.unpack_from("<Q", payload)
        self.tree.lookup(_cstrings(payload[8:])[0]).mtime_ns = mtime


_OPS: dict[int, Any] = {
    READ_DIR: AfcSession._read_dir, REMOVE_PATH: AfcSession._remove, MAKE_DIR: AfcSession._mkdir,
    GET_FILE_INFO: AfcSession._file_info, GET_DEVINFO: AfcSession._device_info, FILE_OPEN: AfcSession._open,
    READ: AfcSession._read, WRITE: AfcSession._write, FILE_SEEK: AfcSession._seek, FILE_TELL: AfcSession._tell,
    FILE_CLOSE: AfcSession._close, FILE_SET_SIZE: AfcSession._set_size, RENAME_PATH: AfcSession._rename,
    FILE_LOCK: AfcSession._lock, SET_FILE_TIME: AfcSession._set_time,
    REMOVE_PATH_AND_CONTENTS: AfcSession._remove_all,
}


async def serve_afc(device: VirtualDevice, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await AfcSession(device, device.media).serve(reader, writer)


async def serve_house_arrest(device: VirtualDevice, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
    """``{Command: VendContainer|VendDocuments, Identifier}`` then AFC rooted at the app container."""
    request = await wire.read_plist(reader)
    if request is None:
        return
    command, bundle_id = request.get("Command"), request.get("Identifier", "")
    if command not in ("VendContainer", "VendDocuments"):
        await wire.send_plist(writer, {"Error": "UnknownCommand"})
        return
    try:
        tree = device.container(bundle_id)
    except AppNotInstalledError:
        await wire.send_plist(writer, {"Error": "ApplicationLookupFailed"})
        return
    await wire.send_plist(writer, {"Status": "Complete"})
    await AfcSession(device, tree).serve(reader, writer)

"""The device's unified log, live: what syslog_relay and os_trace_relay stream to a host.

Entries come from what simulated processes print (``VirtualDevice.on_process_output``),
from process exits (launchd notes a crash) and from services that log themselves (the
crash reporter saving a report). Nothing is kept: like syslog_relay, a host sees the lines
written while it is connected, and a subscriber that falls behind loses the oldest.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.virtual.instruments import processes as ptable

QUEUE_LINES = 10_000  # per subscriber; a host that stops reading cannot grow the server's memory
NOTICE, ERROR, FAULT = 0x00, 0x10, 0x11


@dataclass(frozen=True)
class Entry:
    pid: int
    process: str  # executable name
    path: str  # executable path
    message: str
    level: int = NOTICE
    image: str = ""  # the library that logged it (the executable itself when empty)
    subsystem: str = ""
    category: str = ""
    time: float = field(default_factory=time.time)


class LogBus:
    def __init__(self, device: Any) -> None:
        self.device = device
        self.subscribers: set[asyncio.Queue[Entry]] = set()
        device.on_process_output.append(self._output)
        device.on_process_exit.append(self._exited)

    def emit(self, entry: Entry) -> None:
        for q in list(self.subscribers):
            if q.full():
                q.get_nowait()
            q.put_nowait(entry)

    def subscribe(self) -> asyncio.Queue[Entry]:
        q: asyncio.Queue[Entry] = asyncio.Queue(QUEUE_LINES)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Entry]) -> None:
        self.subscribers.discard(q)

    def _output(self, pid: int, text: str) -> None:
        proc = ptable.find(self.device, pid)
        name, path = (proc.name, proc.path) if proc else (f"pid{pid}", "")
        for line in text.splitlines() or [""]:
            self.emit(Entry(pid, name, path, line))

    def _exited(self, event: Any) -> None:
        if event.signal is None:
            return
        from agents.virtual.device import SIGKILL

        how = "killed by SIGKILL" if event.signal == SIGKILL else f"crashed on signal {event.signal}"
        level = NOTICE if event.signal == SIGKILL else ERROR
        self.emit(Entry(1, "launchd", "/sbin/launchd",
                        f"exited: UIKitApplication:{event.bundle_id}[{event.pid}] {how}", level))


_buses: weakref.WeakKeyDictionary[Any, LogBus] = weakref.WeakKeyDictionary()


def bus(device: Any) -> LogBus:
    """The device's log (created, and hooked to its processes, on first use)."""
    found = _buses.get(device)
    if found is None:
        found = _buses[device] = LogBus(device)
    return found


async def stream(device: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 encode: Callable[[Entry], bytes | None]) -> None:
    """Send each new entry, as ``encode`` frames it (None: skip), until the host hangs up."""
    log = bus(device)
    queue = log.subscribe()
    hangup = asyncio.ensure_future(reader.read(1))  # the host sends nothing more; EOF means it left
    get: asyncio.Future[Entry] | None = None
    try:
        while True:
            get = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({get, hangup}, return_when=asyncio.FIRST_COMPLETED)
            if hangup in done:
                return
            frame = encode(get.result())
            if frame is not None:
                writer.write(frame)
                await writer.drain()
    finally:
        for fut in (hangup, get):
            if fut is not None:
                fut.cancel()
        log.unsubscribe(queue)

"""Run a virtual fleet in a background thread, for tests and in-process demos.

    from agents.virtual.testing import running_fleet

    with running_fleet("examples/virtual-fleet.yaml") as fleet:        # or a FleetSpec,
        os.environ["USBMUXD_SOCKET_ADDRESS"] = fleet.usbmux_address    # or devices=[...]
        udid = fleet.udids[0]
        fleet.unplug(udid); fleet.plug(udid)
        fleet.inject_fault(udid, "harness_crash", count=1)
        fleet.call(lambda server: server.device(udid).apps)            # anything, on the loop

The server lives on its own event loop in a daemon thread; every FleetHandle method
hops onto that loop, so test code never touches device state from the wrong thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from agents.virtual.device import VirtualDevice
from agents.virtual.fleet import FleetSpec, build_server, load_fleet
from agents.virtual.server import VirtualFleetServer

T = TypeVar("T")


class FleetHandle:
    def __init__(self, server: VirtualFleetServer, loop: asyncio.AbstractEventLoop):
        self.server, self.loop = server, loop

    @property
    def usbmux_address(self) -> str:
        assert self.server.usbmux_address is not None
        return self.server.usbmux_address

    @property
    def control_address(self) -> str | None:
        return self.server.control_address

    def env(self) -> dict[str, str]:
        """Environment for a pymobiledevice3 client process (add HOME for private pair records)."""
        return {"USBMUXD_SOCKET_ADDRESS": self.usbmux_address}

    def call(self, fn: Callable[[VirtualFleetServer], T], timeout: float = 30.0) -> T:
        """Run ``fn(server)`` on the server's loop (awaiting it if it returns an awaitable)."""

        if self.loop.is_running() and asyncio._get_running_loop() is self.loop:
            raise RuntimeError("FleetHandle.call from the server's own loop would deadlock: use the server directly")

        async def run() -> Any:
            result = fn(self.server)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    @property
    def udids(self) -> list[str]:
        return self.call(lambda s: list(s.devices))

    def device(self, udid: str) -> dict[str, Any]:
        return self.call(lambda s: s.device(udid).summary())

    def plug(self, udid: str) -> None:
        self.call(lambda s: s.plug(udid))

    def unplug(self, udid: str) -> None:
        self.call(lambda s: s.unplug(udid))

    def inject_fault(self, udid: str, kind: str, **kw: Any) -> dict[str, Any]:
        return self.call(lambda s: s.inject_fault(udid, kind, **kw))

    def clear_faults(self, udid: str, kind: str | None = None) -> None:
        self.call(lambda s: s.clear_faults(udid, kind))

    def read_file(self, udid: str, path: str, bundle_id: str | None = None) -> bytes:
        """A file from the media tree, or from an app container when ``bundle_id`` is given."""

        def read(s: VirtualFleetServer) -> bytes:
            d = s.device(udid)
            return (d.container(bundle_id) if bundle_id else d.media).read(path)

        return self.call(read)


@contextlib.contextmanager
def running_fleet(
    fleet: FleetSpec | str | Path | None = None,
    devices: list[VirtualDevice] | None = None,
    listen: str = "127.0.0.1:0",
    control: str | None = "127.0.0.1:0",
    host: str | None = None,
    **overrides: Any,
) -> Iterator[FleetHandle]:
    """Start a fleet (from a fleet spec or path, or explicit devices) and stop it on exit.

    ``overrides`` go to :func:`agents.virtual.fleet.build_server` (e.g. ``time_compression``).
    """
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()

    async def boot() -> VirtualFleetServer:
        if devices is not None:
            server = VirtualFleetServer(devices)
        else:
            spec = load_fleet(fleet) if isinstance(fleet, (str, Path)) else fleet
            server = build_server(spec or FleetSpec.default(), host=host, **overrides)
        await server.start(listen=listen, control=control)
        return server

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            ready["server"] = loop.run_until_complete(boot())
        except BaseException as exc:  # surfaced in the caller's thread
            ready["error"] = exc
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name="virtual-fleet", daemon=True)
    thread.start()
    started.wait()
    if "error" in ready:
        loop.close()
        raise ready["error"]
    handle = FleetHandle(ready["server"], loop)
    try:
        yield handle
    finally:
        asyncio.run_coroutine_threadsafe(handle.server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

"""The control socket: JSON lines to plug, unplug and break virtual devices from other processes.

One request per line, one reply per line, any number per connection::

    -> {"cmd": "fault", "udid": "00008130-...", "kind": "harness_crash", "count": 1}
    <- {"ok": true, "fault": {"kind": "harness_crash", "params": {}, "count": 1, "expires_in_s": null}}
    -> {"cmd": "nope"}
    <- {"ok": false, "error": "unknown command 'nope' (known: ...)"}

An ``id`` in a request is echoed in its reply. Commands (arguments after the name):
  ping                                   -> {"devices": N}
  list                                   -> {"devices": [summary, ...]}
  device udid                            -> {"device": summary}
  plug udid / unplug udid                -> {}
  fault udid kind [count] [duration_s] [params | any other key as a parameter]
                                         -> {"fault": {...}}
  clear udid [kind]                      -> {}  (no kind: every fault, and replug)
  faults                                 -> {"kinds": {kind: description}}
  battery udid [level] [charging]        -> {}
  add_device product_type ios [name] [tls] [host]  -> {"udid": ...}
  launch udid bundle_id [arguments] [environment]  -> {"pid": N}
  kill udid pid                          -> {}
  read_file udid path [bundle_id]        -> {"base64": "..."}
  chaos seed probabilities [interval_s] [duration_s] / chaos_stop  -> {}
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
from typing import TYPE_CHECKING, Any

from agents.virtual import wire
from agents.virtual.device import VirtualDevice
from agents.virtual.faults import FAULT_KINDS, Chaos
from agents.virtual.fleet import DeviceSpec

if TYPE_CHECKING:
    from agents.virtual.server import VirtualFleetServer

log = logging.getLogger("agents.virtual.control")
MAX_LINE = 1024 * 1024


class ControlError(RuntimeError):
    """The server refused a control command."""


class ControlServer:
    def __init__(self, server: VirtualFleetServer):
        self.server = server

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(self.execute(line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            await wire.close_writer(writer)

    def execute(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
        except ValueError as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        rid = {"id": request["id"]} if "id" in request else {}
        cmd = request.pop("cmd", None)
        request.pop("id", None)
        method = getattr(self, f"cmd_{cmd}", None) if isinstance(cmd, str) else None
        if method is None:
            known = ", ".join(sorted(n[4:] for n in dir(self) if n.startswith("cmd_")))
            return {"ok": False, "error": f"unknown command {cmd!r} (known: {known})", **rid}
        try:
            reply = method(**request) or {}
        except TypeError as exc:
            return {"ok": False, "error": f"{cmd}: bad arguments: {exc}", **rid}
        except (KeyError, ValueError, LookupError, ProcessLookupError) as exc:
            return {"ok": False, "error": f"{cmd}: {str(exc).strip(chr(39))}", **rid}
        log.info("control", extra={"fields": {"cmd": cmd, **{k: v for k, v in request.items() if k != "params"}}})
        return {"ok": True, **reply, **rid}

    # -- commands ------------------------------------------------------------------------
    def cmd_ping(self) -> dict[str, Any]:
        return {"devices": len(self.server.devices)}

    def cmd_list(self) -> dict[str, Any]:
        return {"devices": self.server.snapshot()}

    def cmd_device(self, udid: str) -> dict[str, Any]:
        return {"device": self.server.device(udid).summary()}

    def cmd_plug(self, udid: str) -> None:
        self.server.plug(udid)

    def cmd_unplug(self, udid: str) -> None:
        self.server.unplug(udid)

    def cmd_fault(self, udid: str, kind: str, count: int | None = None, duration_s: float | None = None,
                  params: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        fault = self.server.inject_fault(udid, kind, count=count, duration_s=duration_s, **(params or {}), **extra)
        return {"fault": fault}

    def cmd_clear(self, udid: str, kind: str | None = None) -> None:
        self.server.clear_faults(udid, kind)

    def cmd_faults(self) -> dict[str, Any]:
        return {"kinds": FAULT_KINDS}

    def cmd_battery(self, udid: str, level: float | None = None, charging: bool | None = None) -> None:
        device = self.server.device(udid)
        if level is not None:
            if not 0 <= float(level) <= 100:
                raise ValueError("level must be within 0..100")
            device.battery_level = float(level)
        if charging is not None:
            device.charging = bool(charging)

    def cmd_add_device(self, product_type: str, ios: str, name: str | None = None, tls: bool = True,
                       host: str = "virtual") -> dict[str, Any]:
        spec = DeviceSpec(product_type=product_type, ios=ios, name=name, tls=tls)  # validates type and iOS
        device = VirtualDevice(len(self.server.devices) + 1, spec.product_type, spec.ios,
                               spec.name or f"virtual {product_type} #{len(self.server.devices) + 1}",
                               host=host, tls=tls)
        self.server.add_device(device)
        return {"udid": device.udid}

    def cmd_launch(self, udid: str, bundle_id: str, arguments: list[str] | None = None,
                   environment: dict[str, str] | None = None) -> dict[str, Any]:
        return {"pid": self.server.device(udid).launch_app(bundle_id, arguments or [], environment or {}, True)}

    def cmd_kill(self, udid: str, pid: int) -> None:
        self.server.device(udid).kill(int(pid))

    def cmd_read_file(self, udid: str, path: str, bundle_id: str | None = None) -> dict[str, Any]:
        device = self.server.device(udid)
        tree = device.container(bundle_id) if bundle_id else device.media
        return {"base64": base64.b64encode(tree.read(path)).decode()}

    def cmd_chaos(self, seed: int, probabilities: dict[str, float], interval_s: float = 5.0,
                  duration_s: float = 3.0) -> None:
        self.server.start_chaos(Chaos(int(seed), float(interval_s), dict(probabilities), float(duration_s)))

    def cmd_chaos_stop(self) -> None:
        self.server.stop_chaos()


class ControlClient:
    """A blocking client: ``ControlClient("127.0.0.1:PORT").call("unplug", udid=...)``."""

    def __init__(self, address: str, timeout: float = 10.0):
        if ":" in address:
            host, port = address.rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        self.file = self.sock.makefile("rwb")

    def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        self.file.write(json.dumps({"cmd": cmd, **kwargs}).encode() + b"\n")
        self.file.flush()
        line = self.file.readline(MAX_LINE)
        if not line:
            raise ControlError("the control socket closed")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "unknown error"))
        return reply

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

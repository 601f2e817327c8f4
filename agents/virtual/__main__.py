"""Command line: serve a virtual fleet, or talk to a running one's control socket.

    python -m agents.virtual serve --fleet examples/virtual-fleet.yaml \\
        --listen 127.0.0.1:27015 --control 127.0.0.1:27016 [--host vhost-a]
    python -m agents.virtual ctl --control 127.0.0.1:27016 unplug udid=00008130-...

``serve`` prints one JSON line ``{"event": "ready", "usbmux": ..., "control": ...}`` on
stdout once it listens (port 0 picks a free port: read the real one there), then logs
structured JSON lines on stderr until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from typing import Any

from agents.virtual.control import ControlClient, ControlError
from agents.virtual.fleet import FleetSpec, build_server, load_fleet
from orchestrator.spec.yamlpos import SpecError


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("agents.virtual")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


async def serve(args: argparse.Namespace) -> int:
    spec = load_fleet(args.fleet) if args.fleet else FleetSpec.default()
    server = build_server(spec, host=args.host, time_compression=args.time_compression)
    await server.start(listen=args.listen, control=args.control)
    print(json.dumps({"event": "ready", "usbmux": server.usbmux_address, "control": server.control_address,
                      "devices": list(server.devices)}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    return 0


def ctl(args: argparse.Namespace) -> int:
    kwargs: dict[str, Any] = {}
    for item in args.args:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"argument {item!r} is not key=value", file=sys.stderr)
            return 2
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    try:
        with ControlClient(args.control) as client:
            print(json.dumps(client.call(args.cmd, **kwargs), indent=2))
    except (ControlError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.virtual", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a virtual fleet as usbmuxd")
    s.add_argument("--fleet", help="fleet YAML (default: one A17 Pro, one A15, one M2)")
    s.add_argument("--listen", default="127.0.0.1:27015", help="usbmuxd address: HOST:PORT or a socket path")
    s.add_argument("--control", default=None, help="control socket address: HOST:PORT or a socket path")
    s.add_argument("--host", default=None, help="serve only this virtual host of the fleet")
    s.add_argument("--time-compression", type=float, default=None, help="simulated seconds per real second")
    s.add_argument("--log-level", default="INFO")
    c = sub.add_parser("ctl", help="send one command to a running fleet's control socket")
    c.add_argument("--control", required=True)
    c.add_argument("cmd")
    c.add_argument("args", nargs="*", help="key=value (values parsed as JSON when they are)")
    args = parser.parse_args(argv)
    if args.command == "ctl":
        return ctl(args)
    configure_logging(args.log_level)
    try:
        return asyncio.run(serve(args))
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

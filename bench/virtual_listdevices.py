"""Bench: one virtual usbmuxd process serving 1,000 devices; ListDevices round-trip time.

    python bench/virtual_listdevices.py [--devices 1000] [--samples 30]

Starts ``python -m agents.virtual serve`` as a subprocess with a generated fleet (A17 Pro,
A15 and M2 in equal parts), then measures from this process, over loopback TCP:
  - raw: one ListDevices request/reply on an open usbmux connection (plist encode/decode incl.)
  - pymobiledevice3: ``usbmux.list_devices()`` as the driver calls it (new sockets, ReadBUID probe)
  - lockdown: ``create_using_usbmux`` + QueryType/GetValue/StartSession on the last device
Writes bench/results/virtual_listdevices.json and exits 1 if the p95 ListDevices round trip
(pymobiledevice3's path) is a second or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import plistlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.virtual import wire  # noqa: E402

LIMIT_S = 1.0


def fleet_yaml(n: int) -> str:
    kinds = [("iPhone16,1", "26.1"), ("iPhone14,5", "18.6.2"), ("iPad14,3", "26.1")]
    lines = ["version: 1", "seed: 1", "hosts:", "  - name: bench", "    devices:"]
    for i, (ptype, ios) in enumerate(kinds):
        count = n // len(kinds) + (1 if i < n % len(kinds) else 0)
        lines += [f"      - product_type: {ptype}", f"        ios: '{ios}'", f"        count: {count}"]
    return "\n".join(lines) + "\n"


def raw_list(address: str) -> tuple[float, int]:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        t = time.perf_counter()
        sock.sendall(wire.usbmux_plist({"MessageType": "ListDevices"}, 1))
        head = _recv(sock, 16)
        length = int.from_bytes(head[:4], "little")
        devices = plistlib.loads(_recv(sock, length - 16))["DeviceList"]
        return time.perf_counter() - t, len(devices)


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed")
        buf += chunk
    return buf


def summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "max_ms": round(ms[-1], 2), "mean_ms": round(statistics.fmean(ms), 2), "samples": len(ms)}


async def client_side(address: str, samples: int, last_udid: str) -> dict[str, object]:
    from pymobiledevice3 import usbmux
    from pymobiledevice3.lockdown import create_using_usbmux

    pmd, count = [], 0
    for _ in range(samples):
        t = time.perf_counter()
        devices = await usbmux.list_devices(usbmux_address=address)
        pmd.append(time.perf_counter() - t)
        count = len(devices)
    lockdown = []
    for _ in range(5):
        t = time.perf_counter()
        ld = await create_using_usbmux(serial=last_udid, autopair=False, usbmux_address=address)
        assert ld.paired and ld.udid == last_udid
        await ld.close()
        lockdown.append(time.perf_counter() - t)
    return {"pymobiledevice3_list_devices": summary(pmd), "listed": count, "lockdown_session": summary(lockdown)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "virtual_listdevices.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Path(tmp) / "fleet.yaml"
        fleet.write_text(fleet_yaml(args.devices))
        env = {**os.environ, "HOME": tmp}
        t0 = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "agents.virtual", "serve", "--fleet", str(fleet), "--listen", "127.0.0.1:0",
             "--log-level", "WARNING"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            ready = json.loads(server.stdout.readline())
            startup_s = time.perf_counter() - t0
            address = ready["usbmux"]
            raw = [raw_list(address) for _ in range(args.samples)]
            assert all(n == args.devices for _, n in raw), "ListDevices did not list every device"
            os.environ["HOME"] = tmp  # pymobiledevice3 keeps its pair-record cache under HOME
            client = asyncio.run(client_side(address, args.samples, ready["devices"][-1]))
            rss_kib = int(next(line.split()[1] for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                               if line.startswith("VmRSS:")))
        finally:
            server.terminate()
            server.wait(10)
    result = {
        "bench": "virtual_listdevices",
        "devices": args.devices,
        "server_startup_s": round(startup_s, 3),
        "server_rss_mib": round(rss_kib / 1024, 1),
        "raw_list_devices": summary([s for s, _ in raw]),
        **client,
        "limit_ms": LIMIT_S * 1000,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    p95_ms = result["pymobiledevice3_list_devices"]["p95_ms"]
    result["passed"] = p95_ms < LIMIT_S * 1000 and client["listed"] == args.devices
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

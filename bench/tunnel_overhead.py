"""iOS 26 vs iOS 16 on virtual devices: CoreDeviceProxy tunnel set-up time and per-job driver overhead.

Three measurements in one process, against an in-process virtual fleet (an iPhone 15 Pro on
iOS 26.1 and an iPhone 13 on iOS 16.6, both with lockdown TLS), through unchanged pymobiledevice3:

- ``tunnel_setup_s``: ``UserspaceRsdTunnel.aopen()`` to a connected RSD (lockdown, CoreDeviceProxy
  start + TLS, CDTunnel handshake, userspace TCP/IP stack up, RemoteXPC handshake, remote lockdown
  check-in), then ``aclose()``; N times.
- ``per_job_s``: full driver attempts (prepare -> run -> cleanup) on each device, the iOS 26 one
  with its tunnel kept across jobs (what the driver does) and with a fresh tunnel per job (what
  it would cost without the pool).
- the per-step medians of those attempts (``lockdown``, ``tunnel``, ``launch``, ...).

The harness is simulated and time-compressed, so this is driver + protocol cost, not a benchmark
of a model; on a shared 2-core machine the numbers are noisy (see ``load_avg``).

    python bench/tunnel_overhead.py [--jobs 8] [--tunnels 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agents.drivers.ios import IosDriver
from agents.drivers.ios_ipa import write_placeholder_ipa
from agents.timeline import Timeline
from agents.virtual.device import VirtualDevice
from agents.virtual.testing import FleetHandle, running_fleet
from bench.ios_driver_overhead import run_attempts, stats, step_durations

OUT = Path(__file__).parent / "results" / "tunnel_overhead.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--tunnels", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tunnel-"))
    os.environ["HOME"] = str(tmp)  # pymobiledevice3's pair-record cache stays private
    model = tmp / "bench.pte"
    model.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    devices = [VirtualDevice(1, "iPhone16,1", "26.1", "bench iOS 26", tls=True),
               VirtualDevice(2, "iPhone14,5", "16.6", "bench iOS 16", tls=True)]
    with running_fleet(devices=devices, control=None) as fleet:
        os.environ["USBMUXD_SOCKET_ADDRESS"] = fleet.usbmux_address
        new, old = fleet.udids
        setup = asyncio.run(_tunnel_setups(new, args.tunnels))
        jobs = {
            "ios26_tunnel_reused": _jobs(fleet, tmp, model, new, args.jobs, fresh_tunnel=False),
            "ios26_tunnel_per_job": _jobs(fleet, tmp, model, new, args.jobs, fresh_tunnel=True),
            "ios16_lockdown_dvt": _jobs(fleet, tmp, model, old, args.jobs, fresh_tunnel=False),
        }
    report = {
        "simulated": True, "load_avg": os.getloadavg(), "model_bytes": model.stat().st_size,
        "tunnel_setup_s": stats(setup),
        "per_job_s": {k: v["total"] for k, v in jobs.items()},
        "steps_median_s": {k: v["steps"] for k, v in jobs.items()},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(json.dumps({"tunnel_setup_s": report["tunnel_setup_s"], "per_job_s": report["per_job_s"]}), "->", OUT)


async def _tunnel_setups(udid: str, n: int) -> list[float]:
    from pymobiledevice3.remote.userspace_tunnel import UserspaceRsdTunnel

    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        tunnel = UserspaceRsdTunnel(serial=udid, autopair=False, remotepairing_fallback=False)
        await tunnel.aopen()
        times.append(time.perf_counter() - t0)
        await tunnel.aclose()
    return times


def _jobs(fleet: FleetHandle, tmp: Path, model: Path, udid: str, n: int, fresh_tunnel: bool) -> dict[str, Any]:
    timeline = Timeline()
    drv = IosDriver(harness_ipa=write_placeholder_ipa(tmp / "h.ipa"), usbmux_address=fleet.usbmux_address,
                    pairing_records_dir=tmp / "pairs", timeline=timeline, poll_interval_s=0.1)
    try:
        dev = next(d for d in drv.discover() if d.id == udid)

        def fresh() -> None:
            drv._sync(drv.tunnels.discard(udid), 20)

        totals = run_attempts(drv, dev, model, n, before=fresh if fresh_tunnel else None)
    finally:
        drv.close()
    steps = step_durations(timeline)
    return {"total": stats(totals), "steps": {k: round(statistics.median(v), 4) for k, v in sorted(steps.items())}}


if __name__ == "__main__":
    main()

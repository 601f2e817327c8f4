"""Orchestration overhead of the iOS driver against virtual devices: per-step time of an attempt.

Runs N full attempts (prepare -> run -> cleanup) through unchanged pymobiledevice3 against an
in-process virtual fleet (TLS on) and writes the median/p90 of every timeline step to
bench/results/ios_driver_overhead.json. The harness itself is simulated (time-compressed), so
what this measures is the driver + protocol cost, not a benchmark.

    python bench/ios_driver_overhead.py [--attempts 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.drivers.ios import IosDriver
from agents.drivers.ios_ipa import write_placeholder_ipa
from agents.protocols import DeviceInfo
from agents.timeline import Timeline
from agents.virtual.device import VirtualDevice
from agents.virtual.testing import running_fleet

OUT = Path(__file__).parent / "results" / "ios_driver_overhead.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attempts", type=int, default=20)
    ap.add_argument("--model-mb", type=float, default=10.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ios-"))
    model = tmp / "bench.pte"
    model.write_bytes(bytes(range(256)) * int(args.model_mb * 4096))
    with running_fleet(devices=[VirtualDevice(1, "iPhone14,5", "16.6", "bench", tls=True)], control=None) as fleet:
        timeline = Timeline()
        drv = IosDriver(harness_ipa=write_placeholder_ipa(tmp / "h.ipa"), usbmux_address=fleet.usbmux_address,
                        pairing_records_dir=tmp / "pairs", timeline=timeline, poll_interval_s=0.1)
        try:
            totals = run_attempts(drv, drv.discover()[0], model, args.attempts)
        finally:
            drv.close()
    steps = step_durations(timeline)
    report = {
        "simulated": True, "attempts": args.attempts, "model_bytes": model.stat().st_size,
        "attempt_total_s": stats(totals),
        "steps_s": {name: stats(v) for name, v in sorted(steps.items())},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["attempt_total_s"]), "->", OUT)


def run_attempts(drv: IosDriver, dev: DeviceInfo, model: Path, n: int,
                 before: Callable[[], None] | None = None) -> list[float]:
    """Seconds of each of ``n`` full attempts (prepare, run, cleanup); ``before`` runs untimed first."""
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    totals = []
    for i in range(n):
        job = bench_job(model, sha, i)
        if before is not None:
            before()
        t0 = time.perf_counter()
        drv.prepare(dev, job, model)
        drv.run(dev, job)
        drv.cleanup(dev, job)
        totals.append(time.perf_counter() - t0)
    return totals


def step_durations(timeline: Timeline) -> dict[str, list[float]]:
    steps: dict[str, list[float]] = {}
    for s in timeline.steps:
        steps.setdefault(s["step"], []).append(s["duration_s"])
    return steps


def bench_job(model: Path, sha: str, i: int) -> dict[str, Any]:
    """Attempt ``i`` of the benchmark job: a tiny, fast simulated run."""
    return {"schema_version": 1, "job_id": "bench", "attempt_id": f"a{i}", "attempt_token": i,
            "model_file": model.name, "model_sha256": sha, "backend": "xnnpack",
            "compute_units": "all", "input_shape": [1, 3, 32, 32], "warmup": 1, "iterations": 5,
            "timeout_s": 30, "golden_input": {"kind": "seeded-uniform", "seed": 1}}


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "median": round(statistics.median(ordered), 4),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 4)}


if __name__ == "__main__":
    main()

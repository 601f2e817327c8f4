"""Export pipeline benchmark: export time, size, cache-hit time and host latency per artifact.

    python bench/export_bench.py [--store DIR] [--iterations 50] [--out bench/results/export.json]

Exports MobileNetV3-Small@224 to XNNPACK, XNNPACK-INT8, CoreML and CoreML-INT8, and every
zoo model to XNNPACK, into a fresh store (so export times are real exports), then times a
cache hit and runs each XNNPACK program on this host with ``executorch.runtime`` on the
golden input. Export times depend heavily on machine load; the load average is recorded
next to them. Host latencies are real (not simulated) numbers for this host's CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from agents.harness.contract import golden_input, summarize_output
from orchestrator.export import zoo
from orchestrator.export.artifacts import ArtifactStore, StoredArtifact
from orchestrator.export.pipeline import (
    GOLDEN_SEED,
    ExportRequest,
    compare_to_golden,
    export_artifact,
    versions,
)

RESOLUTION = 224
MBV3_BACKENDS = ("xnnpack", "xnnpack-int8", "coreml", "coreml-int8")


def _export(store: ArtifactStore, model: str, backend: str) -> tuple[StoredArtifact, dict[str, Any]]:
    art, hit = export_artifact(ExportRequest(model, f"zoo:{model}", backend, RESOLUTION), store)
    m = art.meta
    row = {
        "model": model, "backend": backend, "resolution": RESOLUTION, "cache_hit": hit,
        "size_bytes": m["size_bytes"], "size_mb": round(m["size_bytes"] / 1e6, 3),
        "export_time_s": m["export_time_s"], "delegated_ratio": m["delegation"]["delegated_ratio"],
        "delegated_ops": m["delegation"]["delegated_ops"],
        "non_delegated_ops": m["delegation"]["non_delegated_ops"],
        "params": m["params"], "macs": m["macs"], "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(row), flush=True)
    return art, row


def _cache_hit_s(store: ArtifactStore, model: str, backend: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        _, hit = export_artifact(ExportRequest(model, f"zoo:{model}", backend, RESOLUTION), store)
        times.append(time.perf_counter() - t)
        assert hit, "expected a cache hit"
    return round(statistics.median(times), 4)


def _host_latency(store: ArtifactStore, art: StoredArtifact, iterations: int,
                  warmup: int = 10) -> dict[str, Any]:
    from executorch.runtime import Runtime

    shape = art.meta["input_shape"]
    t = time.perf_counter()
    method = Runtime.get().load_program(str(art.path)).load_method("forward")
    load_ms = (time.perf_counter() - t) * 1000
    x = torch.from_numpy(golden_input(shape, GOLDEN_SEED))
    for _ in range(warmup):
        method.execute([x])
    lat = []
    out = None
    for _ in range(iterations):
        t = time.perf_counter()
        out = method.execute([x])
        lat.append((time.perf_counter() - t) * 1000)
    cmp = compare_to_golden(store, art.key, summarize_output(out[0].numpy()))
    return {
        "load_ms": round(load_ms, 2), "p50_ms": round(statistics.median(lat), 3),
        "mean_ms": round(statistics.fmean(lat), 3), "min_ms": round(min(lat), 3),
        "iterations": iterations, "warmup": warmup, "simulated": False,
        "golden_max_abs_error": cmp["max_abs_error"], "golden_top1_agrees": cmp["top1_agrees"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=None, help="artifact store (default: a fresh temp dir)")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "export.json")
    args = ap.parse_args()
    store = ArtifactStore(args.store or Path(tempfile.mkdtemp(prefix="benchfarm-export-bench-")))
    started = time.perf_counter()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    xnnpack: dict[str, StoredArtifact] = {}
    for backend in MBV3_BACKENDS:
        art, row = _export(store, "mobilenet_v3_small", backend)
        rows.append(row)
        if backend == "xnnpack":
            xnnpack["mobilenet_v3_small"] = art
    for model in zoo.ZOO:
        if model not in xnnpack:
            xnnpack[model], row = _export(store, model, "xnnpack")
            rows.append(row)
    sizes = {r["backend"]: r["size_bytes"] for r in rows if r["model"] == "mobilenet_v3_small"}
    doc = {
        "benchmark": "export",
        "generated_at": datetime.now(UTC).isoformat(),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "load_avg_before": load_before,
                 "load_avg_after": os.getloadavg()},
        "versions": versions(),
        "note": "export times on a shared machine: compare within one run; host latencies are real "
                "measurements on this host's CPU (executorch.runtime, XNNPACK), not device figures",
        "exports": rows,
        "size_ratios_mobilenet_v3_small": {
            "xnnpack_int8_over_fp32": round(sizes["xnnpack-int8"] / sizes["xnnpack"], 4),
            "coreml_int8_over_fp16": round(sizes["coreml-int8"] / sizes["coreml"], 4),
            "coreml_fp16_over_xnnpack_fp32": round(sizes["coreml"] / sizes["xnnpack"], 4),
        },
        "cache_hit_s": {"mobilenet_v3_small/xnnpack": _cache_hit_s(store, "mobilenet_v3_small", "xnnpack"),
                        "resnet18/xnnpack": _cache_hit_s(store, "resnet18", "xnnpack")},
        "host_latency_xnnpack": {m: _host_latency(store, a, args.iterations) for m, a in xnnpack.items()},
        "total_s": None,
    }
    doc["total_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("size_ratios_mobilenet_v3_small", "cache_hit_s",
                                          "host_latency_xnnpack", "total_s")}, indent=1))


if __name__ == "__main__":
    main()

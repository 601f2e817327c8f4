"""MobileNetV3-Small @224 (XNNPACK fp32) on this CPU: benchfarm's host driver vs calling
executorch.runtime directly on the same .pte, interleaved to share the machine's noise.

The host driver path is what an agent runs (job document -> warm harness process ->
result document, validated); the direct path is a bare loop in this process. Both time
``method.execute`` after 10 warm-up runs. Writes bench/results/host_vs_direct.json.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ITER, WARM, ROUNDS = 50, 10, 5


def direct(path: Path) -> list[float]:
    import torch
    from executorch.runtime import Runtime

    from agents.harness.contract import golden_input

    method = Runtime.get().load_program(str(path)).load_method("forward")
    x = torch.from_numpy(golden_input([1, 3, 224, 224], 1234))
    for _ in range(WARM):
        method.execute([x])
    out = []
    for _ in range(ITER):
        t = time.perf_counter()
        method.execute([x])
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> dict:
    from agents.drivers.host import HostDriver
    from agents.harness.contract import parse_result
    from orchestrator.export.pipeline import ExportRequest, export_artifact

    art, _ = export_artifact(ExportRequest("mobilenet_v3_small", "zoo:mobilenet_v3_small", "xnnpack", 224))
    driver = HostDriver(slot="bench", workdir=Path(tempfile.mkdtemp()))
    [dev] = driver.discover()
    via_driver: list[float] = []
    via_direct: list[float] = []
    try:
        for r in range(ROUNDS):
            job = {"schema_version": 1, "job_id": "bench", "attempt_id": f"r{r}", "attempt_token": 1,
                   "model_file": "m.pte", "model_sha256": art.meta["file_sha256"], "backend": "xnnpack",
                   "compute_units": "all", "input_shape": [1, 3, 224, 224], "warmup": WARM, "iterations": ITER,
                   "timeout_s": 120, "golden_input": {"kind": "seeded-uniform", "seed": 1234}}
            driver.prepare(dev, job, art.path)
            via_driver += parse_result(driver.run(dev, job))["latencies_ms"]
            driver.cleanup(dev, job)
            via_direct += direct(art.path)
    finally:
        driver.close()
    out = {
        "model": "mobilenet_v3_small@224 xnnpack fp32", "pte_bytes": art.meta["size_bytes"],
        "iterations": ITER * ROUNDS,
        "benchfarm_host_driver_ms": {"median": statistics.median(via_driver), "min": min(via_driver)},
        "direct_executorch_runtime_ms": {"median": statistics.median(via_direct), "min": min(via_direct)},
        "ratio_median": statistics.median(via_driver) / statistics.median(via_direct),
        "ratio_min": min(via_driver) / min(via_direct),
    }
    (ROOT / "bench" / "results" / "host_vs_direct.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

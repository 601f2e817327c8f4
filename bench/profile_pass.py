"""What the per-operator profiling pass costs, and how well its operator times add up.

For each model (XNNPACK fp32, exported with its ETRecord into a temporary store) the real
host driver runs the same job twice in one warm harness: without and with the profiling
pass (``profile.iterations`` profiled iterations after the timed ones). Reported per model:

- ``added_s_per_cell``: wall time the pass adds to a cell (driver.run with − without);
- the pass's own split: ``pass_s`` (load + iterations + ETDump + parse) and ``parse_s``
  (Inspector with the ETRecord), plus a separate Inspector parse timing without it;
- consistency: sum of the operators' mean times vs the tracer's Method::execute mean vs
  the timed iterations' mean/median (the ``latencies_ms`` of the same job).

The machine is shared (2 cores, other suites running): the load average is recorded.
Usage: python bench/profile_pass.py [MODEL ...]   (default: mobilenet_v3_small resnet18)
Writes bench/results/profile_pass.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ITERATIONS, WARMUP, PROFILE_ITERATIONS, REPEATS = 50, 10, 20, 3


def _job(attempt: str, res: int, profile: bool) -> dict:
    doc = {"schema_version": 1, "job_id": "bench", "attempt_id": attempt, "attempt_token": 1, "model_file": "m.pte",
           "model_sha256": "0" * 64, "backend": "xnnpack", "compute_units": "all", "input_shape": [1, 3, res, res],
           "warmup": WARMUP, "iterations": ITERATIONS, "timeout_s": 600,
           "golden_input": {"kind": "seeded-uniform", "seed": 1234}}
    if profile:
        doc["profile"] = {"iterations": PROFILE_ITERATIONS}
    return doc


def _timed(driver, dev, art, job: dict) -> tuple[float, dict]:
    from agents.harness.contract import parse_result

    driver.prepare(dev, job, art.path)
    t = time.perf_counter()
    raw = driver.run(dev, job)
    elapsed = time.perf_counter() - t
    driver.cleanup(dev, job)
    return elapsed, parse_result(raw)


def bench_model(name: str, store, workdir: Path) -> dict:
    from agents.drivers.host import HostDriver
    from agents.drivers.host_profile import _ETRECORDS, parse_etdump
    from orchestrator.export.pipeline import ExportRequest, export_artifact

    t = time.perf_counter()
    art, hit = export_artifact(ExportRequest(name, f"zoo:{name}", "xnnpack", 224), store)
    export_s = time.perf_counter() - t
    driver = HostDriver(slot="bench", workdir=workdir)
    [dev] = driver.discover()
    try:
        _timed(driver, dev, art, _job("warm", 224, False))  # harness start-up and first load
        plain, profiled, docs = [], [], []
        for i in range(REPEATS):  # alternate, so load drift hits both alike
            plain.append(_timed(driver, dev, art, _job(f"plain{i}", 224, False))[0])
            elapsed, doc = _timed(driver, dev, art, _job(f"prof{i}", 224, True))
            profiled.append(elapsed)
            docs.append(doc)
        # the Inspector's parse on its own, with and without the ETRecord, on a kept ETDump
        keep = _job("keep", 224, True)
        driver.prepare(dev, keep, art.path)
        driver.run(dev, keep)
        job_dir = driver._dirs["keep"]
        etdump, etrecord = job_dir / "profile.etdp", next(job_dir.glob("*.etrecord"), None)
        parse = {}
        _ETRECORDS.clear()  # the first parse pays for the ETRecord, a repeat finds it cached
        for label, rec in (("with_etrecord_cold", etrecord), ("with_etrecord_cached", etrecord),
                           ("without_etrecord", None)):
            t = time.perf_counter()
            parse_etdump(etdump, rec, skip=3)
            parse[label] = round(time.perf_counter() - t, 3)
        driver.cleanup(dev, keep)
    finally:
        driver.close()
    rows = []
    for doc in docs:
        prof = doc["profile"]
        ops_sum = sum(op["mean_ms"] for op in prof["operators"])
        rows.append({
            "timed_mean_ms": round(statistics.fmean(doc["latencies_ms"]), 3),
            "timed_median_ms": round(statistics.median(doc["latencies_ms"]), 3),
            "profiled_wall_mean_ms": round(prof["wall_ms"]["mean"], 3),
            "method_execute_mean_ms": round(prof["method_ms"]["mean"], 3),
            "operators_sum_mean_ms": round(ops_sum, 3),
            "operators_over_method": round(ops_sum / prof["method_ms"]["mean"], 4),
            "method_over_timed_mean": round(prof["method_ms"]["mean"] / statistics.fmean(doc["latencies_ms"]), 4),
            "operators": len(prof["operators"]),
            "delegated_share_of_time": round(sum(o["mean_ms"] for o in prof["operators"] if o["delegated"])
                                             / ops_sum, 4),
            "pass_s": round(prof["pass_s"], 3), "parse_s": round(prof["parse_s"], 3),
            "etdump_bytes": prof["etdump_bytes"],
        })
    return {
        "model": name, "backend": "xnnpack", "input": [1, 3, 224, 224], "export_s": round(export_s, 1),
        "export_cache_hit": hit, "etrecord_bytes": (art.meta.get("etrecord") or {}).get("size_bytes"),
        "pte_bytes": art.meta["size_bytes"],
        "run_s_without_profile": [round(x, 3) for x in plain], "run_s_with_profile": [round(x, 3) for x in profiled],
        "added_s_per_cell": round(statistics.median(profiled) - statistics.median(plain), 3),
        "inspector_parse_s": parse, "passes": rows,
    }


def main(models: list[str]) -> dict:
    os.environ.setdefault("BENCHFARM_HOME", tempfile.mkdtemp(prefix="bf-profile-home-"))
    from orchestrator.export.artifacts import ArtifactStore

    tmp = Path(tempfile.mkdtemp(prefix="bf-profile-"))
    store = ArtifactStore(Path(os.environ.get("BENCH_ARTIFACTS", tmp / "artifacts")))
    load_before = os.getloadavg()
    out = {"bench": "profile_pass", "iterations": ITERATIONS, "warmup": WARMUP,
           "profile_iterations": PROFILE_ITERATIONS, "repeats": REPEATS, "cpus": os.cpu_count(),
           "loadavg_before": [round(x, 2) for x in load_before],
           "models": [bench_model(m, store, tmp / "host") for m in models],
           "loadavg_after": [round(x, 2) for x in os.getloadavg()],
           "note": "shared 2-core machine with other suites running: absolute times are noisy"}
    path = ROOT / "bench" / "results" / "profile_pass.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1:] or ["mobilenet_v3_small", "resnet18"])

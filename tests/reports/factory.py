"""Real rows for report tests: runs, jobs, attempts, artifacts and validated result documents."""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from agents.harness.contract import validate_result
from orchestrator.store.models import Artifact, Attempt, Job, Result, Run

_ids = itertools.count(1)
MB = 1024 * 1024
PRODUCTS = {"A17-Pro": ("iPhone16,1", "17.5"), "A15": ("iPhone14,5", "17.4"), "M2": ("iPad14,3", "17.5"),
            "host-cpu": ("host", "Linux 6.1")}


def add_run(s: Session, name: str = "nightly", trigger: str = "nightly", created_at: datetime | None = None) -> Run:
    run = Run(id=f"run{next(_ids):05d}", name=name, trigger=trigger, spec_yaml="{}", status="succeeded",
              created_at=created_at or datetime(2026, 11, 1, 2, 0))
    s.add(run)
    s.flush()
    return run


def add_artifact(s: Session, model: str, backend: str, res: int, size_mb: float, params: int | None = None,
                 accuracy: float | None = None) -> str:
    key = f"art{next(_ids):06d}"
    info = {"params": params} | ({"accuracy": accuracy} if accuracy is not None else {})
    s.add(Artifact(key=key, model=model, backend=backend, input_resolution=res, batch_size=1, status="ready",
                   size_bytes=int(size_mb * MB), info=info))
    return key


def add_cell(s: Session, run: Run, model: str, backend: str, device_class: str, res: int = 224, *,
             latencies: list[list[float]] | None = None, median: float = 10.0, cv: float = 0.05,
             iterations: int = 50, repeats: int = 1, seed: int = 0, state: str = "succeeded", reason: str = "",
             simulated: bool = False, memory_mb: float = 45.0, energy_mj: float | None = None,
             preprocess: float | None = None, postprocess: float | None = None, size_mb: float = 12.0,
             params: int | None = 2_542_856, accuracy: float | None = None, batch: int = 1,
             thermal: tuple[str, str] = ("nominal", "fair"), device_metrics: dict | None = None) -> list[Job]:
    """One cell: ``repeats`` jobs; with results (state succeeded) or failed/blocked with ``reason``."""
    rng = np.random.default_rng(seed)
    key = add_artifact(s, model, backend, res, size_mb, params, accuracy)
    jobs = []
    for rep in range(repeats):
        job = Job(id=f"job{next(_ids):06d}", run_id=run.id, model=model, backend=backend,
                  device_class=device_class, input_resolution=res, batch_size=batch, iterations=iterations,
                  warmup=5, repeat_index=rep, artifact_key=key, state=state, reason=reason)
        s.add(job)
        jobs.append(job)
        if state != "succeeded":
            continue
        lat = latencies[rep] if latencies else list(rng.normal(median, median * cv, iterations).clip(0.01))
        attempt = Attempt(id=f"att{next(_ids):06d}", job_id=job.id, state="succeeded", device_id="dev1")
        s.add(attempt)
        s.flush()  # Result has no ORM relationship to order its insert after the job's
        product, os_version = PRODUCTS[device_class]
        doc = {
            "schema_version": 1, "job_id": job.id, "attempt_id": attempt.id, "attempt_token": 1,
            "simulated": simulated,
            "producer": {"name": "virtual-harness" if simulated else "host-driver", "version": "1"},
            "device": {"model": product, "os": "iOS" if product != "host" else "Linux",
                       "os_version": os_version},
            "backend": backend, "status": "ok", "load_time_ms": 120.0, "latencies_ms": [float(x) for x in lat],
            "peak_memory_bytes": int(memory_mb * MB), "energy_mj_per_inference": energy_mj,
            "thermal_before": thermal[0], "thermal_after": thermal[1],
            "started_at": "2026-11-01T02:00:00Z", "finished_at": "2026-11-01T02:01:00Z",
        }
        for field, value in (("preprocess_ms", preprocess), ("postprocess_ms", postprocess)):
            if value is not None:
                doc[field] = [float(x) for x in rng.normal(value, value * cv, len(lat)).clip(0.01)]
        if device_metrics is not None:
            doc["device_metrics"] = device_metrics
        validate_result(doc)
        arr = np.asarray(lat)
        s.add(Result(job_id=job.id, attempt_id=attempt.id, simulated=simulated, device_id="dev1",
                     device_model=product, os_version=os_version, load_time_ms=120.0,
                     median_ms=float(np.median(arr)), p10_ms=float(np.percentile(arr, 10)),
                     p90_ms=float(np.percentile(arr, 90)), mean_ms=float(arr.mean()),
                     peak_memory_bytes=int(memory_mb * MB), energy_mj=energy_mj, document=doc))
    s.flush()
    return jobs


# The seed guide's matrix (A17 Pro / A15 / M2) on virtual devices, plus real host-cpu rows.
SEED_IOS = {
    "A17-Pro": [("coreml", 10, 45, 4.0), ("mps", 15, 60, 12.0), ("xnnpack", 30, 50, 50.0),
                ("coreml-int8", 8, 30, 3.0)],
    "A15": [("coreml", 15, 50, 6.0), ("mps", 21, 65, 15.0), ("xnnpack", 42, 55, 60.0)],
    "M2": [("coreml", 8, 40, 3.0), ("mps", 11, 55, 8.0), ("xnnpack", 25, 50, 25.0)],
}


def seed_run(s: Session, created_at: datetime | None = None, trigger: str = "nightly") -> Run:
    """A run with every seed table's inputs, a blocked backend and a failed cell."""
    run = add_run(s, "seed matrix", trigger, created_at)
    for cls, rows in SEED_IOS.items():
        for i, (backend, median, mem, energy) in enumerate(rows):
            if backend == "mps":
                add_cell(s, run, "mobilenet_v3_small", backend, cls, state="blocked",
                         reason="needs a macOS exporter")
                continue
            add_cell(s, run, "mobilenet_v3_small", backend, cls, median=median, memory_mb=mem, energy_mj=energy,
                     simulated=True, size_mb=3.0 if backend.endswith("int8") else 12.0, seed=i,
                     preprocess=4.0, postprocess=1.0)
    for i, (res, med, pre, acc) in enumerate(((224, 15.0, 8.0, 75.0), (160, 8.0, 4.0, 73.9), (128, 5.0, 3.0, 72.2))):
        add_cell(s, run, "mobilenet_v3_small", "xnnpack", "host-cpu", res, median=med, preprocess=pre,
                 postprocess=1.0, accuracy=acc, seed=10 + i, repeats=2, iterations=30)
    add_cell(s, run, "resnet18", "xnnpack", "host-cpu", median=35.0, size_mb=44.6, params=11_689_512, seed=20)
    add_cell(s, run, "tiny_cnn", "xnnpack", "host-cpu", state="failed",
             reason="model failure (runtime_error): Missing operator aten::foo")
    add_cell(s, run, "mobilenet_v3_small", "xnnpack-int8", "host-cpu", median=7.0, size_mb=3.1, seed=30)
    return run

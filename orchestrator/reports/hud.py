"""PyTorch HUD benchmark JSON (the "v3" record shape).

Field origin: pytorch/executorch ``.github/scripts/extract_benchmark_results.py``
(read at commit 003aa73971266a04d388a554fd45650c88300af1):
- ``transform()`` builds ``benchmark {name: "ExecuTorch", mode: "inference",
  extra_info {app_type, benchmark_config}}``, ``model {name, type: "OSS model",
  backend}``, ``metric {name, benchmark_values: [value], target_value, extra_info
  {method}}`` and ``runners [{name, type: "iOS x.y", avail_mem_in_gb, total_mem_in_gb}]``;
- ``extract_ios_metric()`` names the iOS metrics ``model_load_time(ms)``,
  ``peak_load_mem_usage(mb)``, ``avg_inference_latency(ms)``,
  ``peak_inference_mem_usage(mb)`` (MB there is kB / 1024);
- ``transform_failure_record()`` writes failures as metric ``FAILURE_REPORT`` with
  ``benchmark_values: 0`` and ``benchmark.extra_info {job_conclusion, failure_level
  (GIT_JOB | DEVICE_JOB), job_report}``.
benchfarm adds, inside the extra_info maps the HUD stores verbatim, ``simulated`` (always
present), the run id, the device class and our statistics (median / p10 / p90 from the
raw samples, which ExecuTorch's pipeline drops).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from device_inventory.catalog import catalog
from orchestrator.analysis.cells import CellStats
from orchestrator.export.registry import UnknownBackend, registry
from orchestrator.reports.build import Report
from orchestrator.reports.data import Cell

SCHEMA_PATH = Path(__file__).with_name("hud.schema.json")
BENCHMARK_NAME = "ExecuTorch"


class HudSchemaError(ValueError):
    pass


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def validate_hud(records: Any) -> None:
    errors = sorted(_validator().iter_errors(records), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "<root>"
        raise HudSchemaError(f"{SCHEMA_PATH.name}: {where}: {e.message} ({len(errors)} problem(s))")


def _dtype(backend: str) -> str:
    try:
        return str(registry().resolve(backend).lowering.get("precision", ""))
    except UnknownBackend:
        return ""


def _runner(cell: Cell) -> dict[str, Any]:
    dc = catalog().classes.get(cell.key.device_class)
    host = dc is not None and dc.kind == "host"
    name = ", ".join(cell.device_models) or (dc.reference_device if dc else cell.key.device_class)
    os_type = ", ".join(cell.os_versions) or "unknown"
    return {"name": name, "type": os_type if host else f"iOS {os_type}", "avail_mem_in_gb": "",
            "total_mem_in_gb": "", "device_class": cell.key.device_class}


def _base(report: Report, cell: Cell, extra: dict[str, Any]) -> dict[str, Any]:
    dc = catalog().classes.get(cell.key.device_class)
    config = {"model": cell.key.model, "config": cell.key.backend, "device_class": cell.key.device_class,
              "input_resolution": cell.key.input_resolution, "batch_size": cell.key.batch_size,
              "run_id": report.run.id}
    return {
        "benchmark": {"name": BENCHMARK_NAME, "mode": "inference", "dtype": _dtype(cell.key.backend),
                      "extra_info": {"app_type": "HOST_APP" if dc and dc.kind == "host" else "IOS_APP",
                                     "simulated": cell.simulated, "benchmark_config": json.dumps(config),
                                     **extra}},
        "model": {"name": cell.key.model, "type": "OSS model", "backend": cell.key.backend},
        "runners": [_runner(cell)],
    }


def _metric(name: str, values: list[float], method: str, cell: Cell, **extra: Any) -> dict[str, Any]:
    return {"name": name, "benchmark_values": [round(v, 4) for v in values], "target_value": 0,
            "extra_info": {"method": method, "simulated": cell.simulated, **extra}}


def cell_records(report: Report, cell: Cell, stats: CellStats) -> list[dict[str, Any]]:
    if not cell.has_results:
        level = "GIT_JOB" if cell.state == "blocked" else "DEVICE_JOB"
        rec = _base(report, cell, {"job_conclusion": cell.state.upper(), "failure_level": level,
                                   "job_report": json.dumps({"state": cell.state, "reason": cell.reason})})
        rec["metric"] = {"name": "FAILURE_REPORT", "benchmark_values": 0, "target_value": 0,
                         "extra_info": {"method": "", "simulated": cell.simulated}}
        return [rec]
    inf = stats.inference
    assert inf is not None  # has_results guarantees samples
    metrics = [
        _metric("model_load_time(ms)", cell.load_times_ms, "load", cell),
        _metric("avg_inference_latency(ms)", [inf.mean], "forward", cell, n=inf.n, outliers=inf.outliers),
        _metric("median_inference_latency(ms)", [inf.median], "forward", cell, p10=round(inf.p10, 4),
                p90=round(inf.p90, 4), cv=round(inf.cv, 5)),
    ]
    if stats.peak_memory_mb is not None:
        metrics.append(_metric("peak_inference_mem_usage(mb)", [stats.peak_memory_mb], "forward", cell))
    if stats.energy_mj is not None:
        metrics.append(_metric("energy_per_inference(mj)", [stats.energy_mj], "forward", cell,
                               power=stats.power))
    return [{**_base(report, cell, {}), "metric": m} for m in metrics]


def hud_records(report: Report) -> list[dict[str, Any]]:
    """Every cell as HUD records (failures included) — validated before it is returned."""
    records = [r for cell, stats in report.analysed for r in cell_records(report, cell, stats)]
    validate_hud(records)
    return records

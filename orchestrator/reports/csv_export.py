"""CSV and plain JSON: one record per cell with the raw statistics (numbers, not
formatted strings), ``simulated`` as a field."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from orchestrator.analysis.stats import MIB
from orchestrator.reports.build import Report


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)


def report_rows(report: Report) -> list[dict[str, Any]]:
    rows = []
    for c, s in report.analysed:
        inf = s.inference
        rows.append({
            "run_id": report.run.id, **c.key._asdict(), "state": c.state, "reason": c.reason,
            "simulated": c.simulated, "repeats": c.repeats, "repeats_ok": c.repeats_ok,
            "iterations": inf.n if inf else 0,
            "median_ms": _r(inf.median if inf else None), "p10_ms": _r(inf.p10 if inf else None),
            "p90_ms": _r(inf.p90 if inf else None), "mean_ms": _r(inf.mean if inf else None),
            "cv": _r(inf.cv if inf else None, 5), "outliers": inf.outliers if inf else None,
            "preprocess_median_ms": _r(s.preprocess.median if s.preprocess else None),
            "postprocess_median_ms": _r(s.postprocess.median if s.postprocess else None),
            "total_median_ms": _r(s.total.median if s.total else None), "load_time_ms": _r(s.load_time_ms),
            "peak_memory_mb": _r(s.peak_memory_mb, 2), "energy_mj_per_inference": _r(s.energy_mj),
            "power": s.power, "power_source": " ".join(c.energy_sources),
            "device_peak_memory_mb": _r(c.device_memory_bytes / MIB, 2) if c.device_memory_bytes else None,
            "device_cpu_pct": _r(c.device_cpu_pct, 2), "device_figures_missing": c.device_missing,
            "charging": c.charging, "model_size_bytes": c.model_size_bytes, "params": c.params,
            "accuracy": c.accuracy, "thermal_before": c.thermal_before, "thermal_after": c.thermal_after,
            "device_models": c.device_models, "os_versions": c.os_versions,
            **{f"budget_{b.budget.name.replace('-', '_')}": b.status for b in s.budgets},
        })
    return rows


def report_json(report: Report) -> str:
    doc = {"run": {"id": report.run.id, "name": report.run.name, "trigger": report.run.trigger,
                   "status": report.run.status, "created_at": report.run.created_at.isoformat()},
           "simulated": report.simulated, "cells": report_rows(report)}
    return json.dumps(doc, indent=1) + "\n"


def report_csv(report: Report) -> str:
    rows = report_rows(report)
    buf = io.StringIO()
    if not rows:
        return ""
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: (" ".join(v) if isinstance(v, list) else "" if v is None
                        else str(v).lower() if isinstance(v, bool) else v) for k, v in row.items()})
    return buf.getvalue()

"""CSV: one row per cell with the raw statistics (numbers, not formatted strings)."""

from __future__ import annotations

import csv
import io

from orchestrator.reports.build import Report

COLUMNS = ["run_id", "model", "backend", "device_class", "input_resolution", "batch_size", "state", "reason",
           "simulated", "repeats", "repeats_ok", "iterations", "median_ms", "p10_ms", "p90_ms", "mean_ms", "cv",
           "outliers", "preprocess_median_ms", "postprocess_median_ms", "total_median_ms", "load_time_ms",
           "peak_memory_mb", "energy_mj_per_inference", "power", "model_size_bytes", "params", "accuracy",
           "thermal_before", "thermal_after", "device_models", "os_versions", "budget_realtime_30fps",
           "budget_standard_10fps", "budget_memory"]


def _num(v: float | None, digits: int = 4) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def report_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for c, s in report.analysed:
        inf = s.inference
        budgets = {b.budget.name: b.status for b in s.budgets}
        w.writerow([
            report.run.id, *c.key, c.state, c.reason, str(c.simulated).lower(), c.repeats, c.repeats_ok,
            inf.n if inf else 0, _num(inf and inf.median), _num(inf and inf.p10), _num(inf and inf.p90),
            _num(inf and inf.mean), _num(inf and inf.cv, 5), inf.outliers if inf else "",
            _num(s.preprocess and s.preprocess.median), _num(s.postprocess and s.postprocess.median),
            _num(s.total and s.total.median), _num(s.load_time_ms), _num(s.peak_memory_mb, 2),
            _num(s.energy_mj), s.power, c.model_size_bytes or "", c.params or "", _num(c.accuracy, 2),
            c.thermal_before or "", c.thermal_after or "", " ".join(c.device_models), " ".join(c.os_versions),
            budgets.get("realtime-30fps", ""), budgets.get("standard-10fps", ""), budgets.get("memory", ""),
        ])
    return buf.getvalue()

"""Which source each figure of a device table came from: the device's instruments (DVT sysmontap,
energy gauge) or the harness, and what the Power column says when the device charged over USB."""

from __future__ import annotations

import csv
import io

from sqlalchemy.orm import Session

from orchestrator.reports.build import analyse_run, build_report
from orchestrator.reports.csv_export import report_csv
from orchestrator.reports.data import load_run
from orchestrator.reports.tables import SOURCES_NOTE, device_tables

from .factory import MB, add_cell, add_run

BATTERY = {"source": "diagnostics.battery", "charging": True, "power_mw": None, "note": "charging over USB"}


def _metrics(energy_mj: float | None, footprint_mb: float = 60.0, missing: list | None = None) -> dict:
    energy = None if energy_mj is None else {"source": "dvt.energy", "samples": 12, "mean_cost_mw": 2010.0,
                                             "mean_compute_cost_mw": 2000.0, "energy_mj_per_inference": energy_mj}
    memory = None if missing else {"source": "dvt.sysmontap", "samples": 14, "mean_cpu_pct": 380.0,
                                   "peak_cpu_pct": 400.0, "peak_footprint_bytes": int(footprint_mb * MB),
                                   "mean_footprint_bytes": int(footprint_mb * MB * 0.9)}
    return {"simulated": True, "window_s": 1.2, "memory": memory, "energy": energy, "battery": BATTERY,
            "missing": missing or []}


def test_power_and_memory_name_their_source(session: Session) -> None:
    run = add_run(session)
    # the gauge's figure wins over the harness's (Medium by the device, Very Low by the harness)
    add_cell(session, run, "mobilenet_v3_small", "xnnpack", "A15", simulated=True, energy_mj=5.0,
             device_metrics=_metrics(50.0))
    # instruments refused: the harness's own energy, and the reason the device's figures are missing
    refused = [{"source": "dvt.energy", "reason": "DTXNsError: Unable to find a service"},
               {"source": "dvt.sysmontap", "reason": "DTXNsError: Unable to find a service"}]
    add_cell(session, run, "mobilenet_v3_small", "coreml", "A15", simulated=True, energy_mj=5.0,
             device_metrics=_metrics(None, missing=refused))
    # no energy from anywhere while charging over USB: said, not a number
    add_cell(session, run, "mobilenet_v3_small", "mps", "A15", simulated=True, energy_mj=None,
             device_metrics=_metrics(None))
    session.commit()
    [table] = device_tables(analyse_run(load_run(session, run.id)))
    assert table.columns[:6] == ["Backend", "Model Size", "Inference Time", "Memory", "Power", "Device memory"]
    rows = {r.values[0]: (dict(zip(table.columns, r.values, strict=True)), r) for r in table.rows}

    values, row = rows["XNNPACK"]
    assert values["Power"] == "Medium" and values["Memory"] == "45 MB" and values["Device memory"] == "60 MB"
    assert row.sources == ""  # the table's usual sources, which its note names
    assert SOURCES_NOTE in table.note and "dvt.energy" in table.note and "sysmontap" in table.note

    values, row = rows["CoreML"]
    assert values["Power"] == "Very Low" and values["Device memory"] == "—"
    assert row.sources.startswith("power: harness; device figures missing (dvt.energy: DTXNsError")
    assert row.sources in values["Notes"]

    values, row = rows["MPS"]
    assert values["Power"] == "n/a (charging)"
    assert "charging over USB: battery current not usable" in row.sources

    csv_rows = {r["backend"]: r for r in csv.DictReader(io.StringIO(report_csv(build_report(session, run.id))))}
    assert csv_rows["xnnpack"]["power_source"] == "dvt.energy" and csv_rows["coreml"]["power_source"] == "harness"
    assert float(csv_rows["xnnpack"]["device_peak_memory_mb"]) == 60.0
    assert csv_rows["coreml"]["device_peak_memory_mb"] == ""

"""Each seed table rendered from real DB rows (SQLite file; PostgreSQL when DATABASE_URL is set)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator.reports.build import analyse_run, build_report
from orchestrator.reports.data import load_run
from orchestrator.reports.markdown import report_markdown, table_markdown
from orchestrator.reports.matrix import matrix_markdown
from orchestrator.reports.tables import Table, all_tables

from .factory import add_cell, add_run, seed_run


def _tables(session: Session, run_id: str) -> dict[str, Table]:
    return {t.id: t for t in all_tables(analyse_run(load_run(session, run_id)))}


def _rows(table: Table, column: str = "Backend") -> dict[str, dict[str, str]]:
    i = table.columns.index(column)
    return {r.values[i]: dict(zip(table.columns, r.values, strict=True)) for r in table.rows}


def test_per_device_backend_tables(session: Session) -> None:
    run = seed_run(session)
    tables = _tables(session, run.id)
    a17 = tables["device-a17-pro"]
    assert a17.title == "iPhone 15 Pro (A17 Pro)"
    assert tables["device-a15"].title == "iPhone 13 (A15 Bionic)"
    assert tables["device-m2"].title == "iPad Pro (M2)"
    assert a17.columns[:5] == ["Backend", "Model Size", "Inference Time", "Memory", "Power"]
    rows = _rows(a17)
    assert list(rows) == ["CoreML", "MPS", "XNNPACK", "Quantized (INT8) + CoreML"]  # the seed's order
    coreml = rows["CoreML"]
    assert coreml["Model Size"] == "12 MB" and coreml["Memory"] == "45 MB" and coreml["Power"] == "Very Low"
    lo, hi = coreml["Inference Time"].removesuffix(" ms").split("-")
    assert 8 <= float(lo) <= 10 <= float(hi) <= 12
    assert "simulated" in coreml["Notes"] and "iOS 17.5" in coreml["Notes"]
    assert rows["XNNPACK"]["Power"] == "Medium" and rows["Quantized (INT8) + CoreML"]["Model Size"] == "3.0 MB"
    # a blocked backend is a row with its reason, not a missing row
    assert rows["MPS"]["Inference Time"] == "blocked"
    assert rows["MPS"]["Notes"] == "blocked: needs a macOS exporter"
    assert rows["XNNPACK"]["30 FPS budget"].startswith("fail (inference ")
    assert rows["CoreML"]["30 FPS budget"].startswith("pass")
    assert rows["CoreML"]["Memory budget"] == "pass (peak memory 155.0 MB under)"
    assert coreml["Thermal"] == "nominal→fair"
    host = tables["device-host-cpu"]
    failed = next(r for r in host.rows if r.values[0] == "tiny_cnn")
    assert failed.state == "failed" and "Missing operator aten::foo" in failed.values[-1]
    assert not any("simulated" in r.values[-1] for r in host.rows)  # host rows are measurements
    resnet = dict(zip(host.columns, next(r for r in host.rows if r.values[0] == "resnet18").values, strict=True))
    assert resnet["Power"] == "n/a"
    assert resnet["30 FPS budget"].startswith("fail (inference") and resnet["10 FPS budget"].startswith("pass")


def test_device_rows_show_the_frame_stages_and_check_all_four_budgets(session: Session) -> None:
    from orchestrator.analysis.cells import analyze
    from orchestrator.reports.data import load_run

    run = seed_run(session)
    host = _tables(session, run.id)["device-host-cpu"]
    by_model = {(r.values[0], r.values[1], r.values[2]): dict(zip(host.columns, r.values, strict=True))
                for r in host.rows}
    mnv3 = by_model[("mobilenet_v3_small", "224×224 b1", "XNNPACK")]
    assert (mnv3["Preprocessing"], mnv3["Postprocessing"]) == ("8 ms", "1.0 ms")
    assert mnv3["Total"] == "24 ms"  # per frame: 8 + 15 + 1
    cells = {c.key: c for c in load_run(session, run.id).cells}
    cell = next(c for k, c in cells.items() if k.model == "mobilenet_v3_small" and k.device_class == "host-cpu"
                and k.input_resolution == 224 and k.backend == "xnnpack")
    rt = analyze(cell).budget("realtime-30fps")
    assert rt is not None and {c.metric: c.status for c in rt.checks} == {
        "total_ms": "pass", "preprocess_ms": "pass", "inference_ms": "fail", "postprocess_ms": "pass"}
    # a cell whose harness timed inference only: no stage is zero, so no total is claimed
    resnet = by_model[("resnet18", "224×224 b1", "XNNPACK")]
    assert (resnet["Preprocessing"], resnet["Postprocessing"], resnet["Total"]) == ("—", "—", "—")
    resnet_cell = next(c for k, c in cells.items() if k.model == "resnet18")
    rt = analyze(resnet_cell).budget("realtime-30fps")
    assert rt is not None and rt.unmeasured == ["total_ms", "preprocess_ms", "postprocess_ms"]


def test_resolution_sweep(session: Session) -> None:
    run = seed_run(session)
    sweep = _tables(session, run.id)["resolution-host-cpu-mobilenet_v3_small-xnnpack-1"]
    assert sweep.columns == ["Resolution", "Preprocessing", "Inference", "Total", "Accuracy", "Notes"]
    rows = _rows(sweep, "Resolution")
    assert list(rows) == ["224×224", "160×160", "128×128"]
    assert rows["224×224"]["Preprocessing"] == "8 ms" and rows["224×224"]["Inference"] == "15 ms"
    assert rows["224×224"]["Total"] == "24 ms" and rows["224×224"]["Accuracy"] == "75%"
    assert rows["128×128"]["Accuracy"] == "72.2%"
    # iOS cells have a single resolution: no sweep table for them
    assert not any(t.startswith("resolution-a17") for t in _tables(session, run.id))


def test_resolution_sweep_without_accuracy_or_preprocessing_shows_dash(session: Session) -> None:
    run = add_run(session)
    add_cell(session, run, "m", "xnnpack", "host-cpu", 224, median=20)
    add_cell(session, run, "m", "xnnpack", "host-cpu", 128, state="failed", reason="runtime_error: boom")
    sweep = _tables(session, run.id)["resolution-host-cpu-m-xnnpack-1"]
    rows = _rows(sweep, "Resolution")
    assert rows["224×224"]["Accuracy"] == "—" and rows["224×224"]["Preprocessing"] == "—"
    assert rows["128×128"]["Inference"] == "failed" and "boom" in rows["128×128"]["Notes"]


def test_architecture_comparison(session: Session) -> None:
    run = seed_run(session)
    arch = _tables(session, run.id)["architecture-host-cpu-xnnpack"]
    assert arch.columns[:4] == ["Architecture", "Params", "Model Size", "Inference"]
    rows = _rows(arch, "Architecture")
    assert rows["resnet18"]["Params"] == "11.7M" and rows["mobilenet_v3_small"]["Params"] == "2.5M"
    assert 32 <= float(rows["resnet18"]["Inference"].removesuffix(" ms")) <= 38
    assert rows["tiny_cnn"]["Inference"] == "failed"


def test_quantization_impact(session: Session) -> None:
    run = seed_run(session)
    quant = _tables(session, run.id)["quantization"]
    rows = _rows(quant, "Float → quantized")
    coreml = rows["CoreML → Quantized (INT8) + CoreML"]
    assert coreml["Size ratio"] == "4.00×" and coreml["Device"] == "iPhone 15 Pro (A17 Pro)"
    assert 1.1 < float(coreml["Speed ratio"].rstrip("×")) < 1.5  # 10 ms vs 8 ms
    assert "simulated" in coreml["Notes"]
    host = rows["XNNPACK → XNNPACK (INT8)"]
    assert 1.9 < float(host["Speed ratio"].rstrip("×")) < 2.4  # 15 ms vs 7 ms


def test_repeats_are_pooled(session: Session) -> None:
    run = add_run(session)
    add_cell(session, run, "m", "xnnpack", "host-cpu", latencies=[[10.0] * 20, [20.0] * 20], repeats=2)
    cell = load_run(session, run.id).cells[0]
    assert cell.repeats == cell.repeats_ok == 2 and len(cell.latencies_ms) == 40


def test_thermal_is_worst_seen_and_unknown_is_not_reported(session: Session) -> None:
    run = add_run(session)
    add_cell(session, run, "m", "xnnpack", "host-cpu", thermal=("unknown", "unknown"))
    add_cell(session, run, "m", "coreml", "A17-Pro", thermal=("nominal", "serious"), simulated=True)
    tables = _tables(session, run.id)
    assert _rows(tables["device-host-cpu"])["XNNPACK"]["Thermal"] == "—"
    assert _rows(tables["device-a17-pro"])["CoreML"]["Thermal"] == "nominal→serious"


def test_partial_cell_keeps_results_and_reason(session: Session) -> None:
    run = add_run(session)
    add_cell(session, run, "m", "xnnpack", "host-cpu", repeats=1)
    add_cell(session, run, "m", "xnnpack", "A15", state="failed", reason="device lost")
    data = load_run(session, run.id)
    assert {c.key.device_class: c.state for c in data.cells} == {"host-cpu": "ok", "A15": "failed"}


def test_markdown_matrix(session: Session) -> None:
    run = seed_run(session)
    md = matrix_markdown(session, run.id)
    assert "### iPhone 15 Pro (A17 Pro)" in md and "| MPS | 12 MB | blocked |" in md
    assert md.startswith("> **simulated**")
    full = report_markdown(build_report(session, run.id))
    for heading in ("## Performance benchmarks", "## Input resolution", "## Architectures", "## Quantization"):
        assert heading in full
    assert table_markdown(_tables(session, run.id)["quantization"]).count("\n|") >= 3

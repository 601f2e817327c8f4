"""HUD JSON (schema-validated), CSV, JSON, HTML with inline SVG, PR verdict markdown."""

from __future__ import annotations

import copy
import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy.orm import Session

from orchestrator.analysis.compare import compare_runs
from orchestrator.reports.build import build_report
from orchestrator.reports.csv_export import report_csv, report_json
from orchestrator.reports.data import load_run
from orchestrator.reports.html import report_html
from orchestrator.reports.hud import HudSchemaError, hud_records, validate_hud
from orchestrator.reports.markdown import verdict_markdown

from .factory import add_cell, add_run, seed_run


def test_hud_records_validate_and_include_failures(session: Session) -> None:
    run = seed_run(session)
    records = hud_records(build_report(session, run.id))
    validate_hud(records)
    failures = [r for r in records if r["metric"]["name"] == "FAILURE_REPORT"]
    assert {(r["model"]["backend"], r["benchmark"]["extra_info"]["failure_level"]) for r in failures} == {
        ("mps", "GIT_JOB"), ("xnnpack", "DEVICE_JOB")}
    blocked = next(r for r in failures if r["model"]["backend"] == "mps")
    assert json.loads(blocked["benchmark"]["extra_info"]["job_report"])["reason"] == "needs a macOS exporter"
    assert blocked["metric"]["benchmark_values"] == 0
    names = {r["metric"]["name"] for r in records}
    assert {"model_load_time(ms)", "avg_inference_latency(ms)", "peak_inference_mem_usage(mb)",
            "energy_per_inference(mj)"} <= names
    a17 = [r for r in records if r["runners"][0]["device_class"] == "A17-Pro" and r["model"]["backend"] == "coreml"]
    assert all(r["benchmark"]["extra_info"]["simulated"] is True for r in a17)
    assert a17[0]["runners"][0]["type"] == "iOS 17.5" and a17[0]["runners"][0]["name"] == "iPhone16,1"
    host = [r for r in records
            if r["runners"][0]["device_class"] == "host-cpu" and r["metric"]["name"] != "FAILURE_REPORT"]
    assert host and all(r["metric"]["extra_info"]["simulated"] is False for r in host)


def test_hud_schema_rejects_malformed_records(session: Session) -> None:
    run = seed_run(session)
    records = hud_records(build_report(session, run.id))
    broken = copy.deepcopy(records)
    del broken[0]["metric"]["extra_info"]["simulated"]
    with pytest.raises(HudSchemaError, match="0/metric/extra_info"):
        validate_hud(broken)
    failure = next(i for i, r in enumerate(records) if r["metric"]["name"] == "FAILURE_REPORT")
    broken = copy.deepcopy(records)
    del broken[failure]["benchmark"]["extra_info"]["failure_level"]
    with pytest.raises(HudSchemaError):
        validate_hud(broken)


def test_csv_and_json_carry_simulated_field(session: Session) -> None:
    run = seed_run(session)
    report = build_report(session, run.id)
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert len(rows) == len(report.data.cells)
    by = {(r["device_class"], r["backend"], r["model"], r["input_resolution"]): r for r in rows}
    a17 = by[("A17-Pro", "coreml", "mobilenet_v3_small", "224")]
    assert a17["simulated"] == "true" and a17["power"] == "Very Low" and a17["budget_realtime_30fps"] == "pass"
    assert 9 < float(a17["median_ms"]) < 11
    blocked = by[("A17-Pro", "mps", "mobilenet_v3_small", "224")]
    assert blocked["state"] == "blocked" and blocked["reason"] == "needs a macOS exporter"
    assert blocked["median_ms"] == "" and blocked["budget_realtime_30fps"] == "n/a"
    assert by[("host-cpu", "xnnpack", "resnet18", "224")]["simulated"] == "false"
    doc = json.loads(report_json(report))
    assert doc["simulated"] is True and {c["simulated"] for c in doc["cells"]} == {True, False}


def test_html_is_self_contained_with_svg_plots(session: Session) -> None:
    base = seed_run(session)
    run = seed_run(session)
    html = report_html(build_report(session, run.id, baseline_id=base.id))
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert 'class="badge sim"' in html and "simulated" in html
    assert '<td class="fail">fail (inference ' in html and '<td class="pass">pass' in html
    svgs = [html[i: html.index("</svg>", i) + 6] for i in range(len(html)) if html.startswith("<svg", i)]
    assert len(svgs) >= 4  # one latency distribution per device class
    for svg in svgs:
        ET.fromstring(svg)  # well-formed XML
    assert "Against baseline" in html


def test_verdict_markdown_for_pr_comment(session: Session) -> None:
    base = add_run(session, "main", "nightly")
    pr = add_run(session, "PR 42", "pr")
    for run, slow in ((base, 1.0), (pr, 1.10)):
        add_cell(session, run, "m", "xnnpack", "host-cpu", median=10 * slow, cv=0.03, seed=1 if run is base else 2)
        add_cell(session, run, "m", "coreml", "A17-Pro", median=8, cv=0.03, simulated=True,
                 seed=3 if run is base else 4)
    add_cell(session, pr, "m", "mps", "A17-Pro", state="blocked", reason="needs a macOS exporter")
    comps = compare_runs(load_run(session, base.id), load_run(session, pr.id))
    verdicts = {c.key.backend: c.verdict.verdict for c in comps}
    assert verdicts == {"xnnpack": "slower", "coreml": "within noise", "mps": "insufficient data"}
    md = verdict_markdown(comps)
    lines = md.splitlines()
    assert lines[0] == "| Cell | Baseline | PR | Change | Verdict |"
    slow = next(line for line in lines if "XNNPACK" in line)
    assert "🔴 slower" in slow and "+" in slow and "95% CI" in slow
    assert "*(simulated)*" in next(line for line in lines if "CoreML" in line)
    assert "not in baseline" in next(line for line in lines if "MPS" in line)
    assert "**simulated**" in md and "1 slower" in md

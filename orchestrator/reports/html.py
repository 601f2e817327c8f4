"""The offline HTML report: one self-contained file (inline CSS and SVG, no scripts, no
network) with the matrix tables coloured by budget, latency distributions per device
and backend, nightly trends, silent cells and the baseline verdicts."""

from __future__ import annotations

from collections import defaultdict
from html import escape

from orchestrator.reports.build import Report
from orchestrator.reports.markdown import VERDICT_ICON, cell_label, side_summary
from orchestrator.reports.operators import operators_section
from orchestrator.reports.svg import box_plot, trend_plot
from orchestrator.reports.tables import (
    SIMULATED,
    Table,
    backend_display,
    backend_order,
    class_order,
    device_title,
)

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 4px}th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3;text-align:left}td.pass{background:#e3f6e3}td.fail{background:#fbe0e0}
tr.failed td,tr.blocked td,tr.cancelled td{color:#a33;font-style:italic}tr.partial td{color:#a60}
.badge{display:inline-block;padding:1px 6px;border-radius:8px;font-size:11px;font-weight:bold}
.sim{background:#fdf1c7;color:#7a5b00}.banner{padding:8px 12px;background:#fdf1c7;border:1px solid #e5c55a}
.alert{padding:8px 12px;background:#fbe0e0;border:1px solid #d88}.note{color:#666;font-size:12px}
.slower{color:#b00;font-weight:bold}.faster{color:#070;font-weight:bold}
"""


def _td(text: str) -> str:
    status = text.split(" ", 1)[0] if text.startswith(("pass", "fail")) else ""
    body = escape(text).replace(escape(SIMULATED), f'<span class="badge sim">{SIMULATED}</span>')
    return f'<td class="{status}">{body}</td>' if status else f"<td>{body}</td>"


def table_html(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    rows = "".join(f'<tr class="{escape(r.state)}{" simulated" if r.simulated else ""}">'
                   + "".join(_td(v) for v in r.values) + "</tr>" for r in table.rows)
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (f'<h3 id="{escape(table.id)}">{escape(table.title)}</h3>'
            f'<table class="{escape(table.kind)}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}')


def _distribution_plots(report: Report) -> list[str]:
    by_class: dict[str, list] = defaultdict(list)
    for cell, _ in report.analysed:
        by_class[cell.key.device_class].append(cell)
    plots = []
    for cls in sorted(by_class, key=class_order):
        cells = sorted(by_class[cls], key=lambda c: (c.key.model, backend_order(c.key.backend),
                                                     -c.key.input_resolution))
        multi = len({(c.key.model, c.key.input_resolution) for c in cells}) > 1
        series = [(backend_display(c.key.backend)
                   + (f" · {c.key.model} @{c.key.input_resolution}" if multi else "")
                   + ("" if c.has_results else f" — {c.state}"), c.latencies_ms, c.simulated) for c in cells]
        plots.append(box_plot(f"Latency per iteration — {device_title(cls)}", series))
    return plots


def _trend_plots(report: Report) -> list[str]:
    plots = []
    for key, points in report.history.items():
        if len(points) < 2 or not any(p.median_ms is not None for p in points):
            continue  # never measured: the tables and silent-cell alerts say why
        data = [(p.created_at, p.p10_ms, p.median_ms, p.p90_ms, p.change) for p in points]
        sim = f" ({SIMULATED})" if any(p.simulated for p in points) else ""
        plots.append(trend_plot(f"Nightly median — {cell_label(key)}{sim}", data))
    return plots


def _verdicts(report: Report) -> str:
    rows = []
    for comp in report.comparisons:
        v = comp.verdict
        change = comp.note if v.ratio is None else f"{v.change_pct:+.1f}%"
        sim = f' <span class="badge sim">{SIMULATED}</span>' if comp.simulated else ""
        rows.append(f"<tr><td>{escape(cell_label(comp.key))}{sim}</td><td>{escape(side_summary(comp.baseline))}"
                    f"</td><td>{escape(side_summary(comp.candidate))}</td><td>{escape(change or '—')}</td>"
                    f'<td class="{v.verdict.split()[0]}">{escape(VERDICT_ICON[v.verdict])}</td></tr>')
    return ("<table><thead><tr><th>Cell</th><th>Baseline</th><th>This run</th><th>Change</th><th>Verdict</th>"
            "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def report_html(report: Report) -> str:
    run = report.run
    body = [f"<h1>Device matrix — {escape(run.name)} <code>{escape(run.id)}</code></h1>",
            f'<p class="note">trigger {escape(run.trigger)} · status {escape(run.status)} · '
            f"created {run.created_at:%Y-%m-%d %H:%M} UTC</p>"]
    if report.simulated:
        body.append(f'<p class="banner"><span class="badge sim">{SIMULATED}</span> Rows marked {SIMULATED} '
                    "come from virtual devices: their numbers are a simulation, not a measurement.</p>")
    if report.silent:
        items = "".join(f"<li><b>{escape(cell_label(s.key))}</b>: no results for {s.silent_runs} nightly runs "
                        f"(last in {escape(s.last_result_run)}, {s.last_result_at:%Y-%m-%d}; now "
                        f"{escape(s.last_state)})</li>" for s in report.silent)
        body.append(f'<div class="alert"><h2>Silent cells</h2><ul>{items}</ul></div>')
    for kind, heading in (("device", "Performance benchmarks"), ("resolution", "Input resolution"),
                          ("architecture", "Architectures"), ("quantization", "Quantization")):
        tables = [t for t in report.tables if t.kind == kind]
        if tables:
            body.append(f"<h2>{heading}</h2>" + "".join(table_html(t) for t in tables))
    body.append("<h2>Latency distributions</h2>"
                '<p class="note">Box: p25-p75; whiskers: p10-p90; bar: median.</p>'
                + "".join(f"<div>{p}</div>" for p in _distribution_plots(report)))
    body.append(operators_section(report.data.cells))
    if report.baseline is not None:
        body.append(f"<h2>Against baseline {escape(report.baseline.name)} "
                    f"<code>{escape(report.baseline.id)}</code></h2>" + _verdicts(report))
    trends = _trend_plots(report)
    if trends:
        body.append("<h2>Nightly trends</h2>"
                    '<p class="note">Line: median; band: p10-p90; red: change point; ×: no result.</p>'
                    + "".join(f"<div>{p}</div>" for p in trends))
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>benchfarm — {escape(run.name)}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")

"""The capacity section of the HTML report: a table and two inline SVG bar charts
(utilisation per class, queue-wait p50/p95 per class and trigger against the PR target).
Self-contained markup, no script and no network, like the rest of the report."""

from __future__ import annotations

from html import escape
from typing import Any

from orchestrator.capacity.fmt import pct, secs

ROW_H, LABEL_W, BAR_W, PAD = 22, 220, 520, 10
COLOURS = {"busy": "#268bd2", "leased": "#93c5e8", "p50": "#859900", "p95": "#cb4b16", "target": "#dc322f"}


def _bars(title: str, rows: list[tuple[str, list[tuple[str, float]]]], scale: float, unit: str,
          target: float | None = None) -> str:
    """Stacked horizontal bars: one row per label, segments (colour key, value) in `scale` units."""
    height = PAD * 2 + 20 + ROW_H * max(len(rows), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + BAR_W + 80}" height="{height}" '
           f'role="img" aria-label="{escape(title)}">',
           f'<text x="{PAD}" y="{PAD + 10}" font-size="13" font-weight="bold">{escape(title)}</text>']
    scale = scale or 1.0
    for i, (label, segments) in enumerate(rows):
        y = PAD + 20 + i * ROW_H
        out.append(f'<text x="{PAD}" y="{y + 14}" font-size="12">{escape(label)}</text>')
        x = float(LABEL_W)
        for key, value in segments:
            w = max(0.0, min(value / scale, 1.0)) * BAR_W
            out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 8}" '
                       f'fill="{COLOURS[key]}"><title>{escape(key)}: {value:.3g} {unit}</title></rect>')
            x += w
        total = sum(v for _, v in segments)
        out.append(f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="11">{total:.3g} {unit}</text>')
    if not rows:
        out.append(f'<text x="{LABEL_W}" y="{PAD + 34}" font-size="12">no data in the window</text>')
    if target is not None and scale:
        tx = LABEL_W + min(target / scale, 1.0) * BAR_W
        out.append(f'<line x1="{tx:.1f}" y1="{PAD + 16}" x2="{tx:.1f}" y2="{height - PAD}" '
                   f'stroke="{COLOURS["target"]}" stroke-dasharray="4 3"><title>target {target:g} {unit}'
                   f'</title></line>')
    out.append("</svg>")
    return "".join(out)


def capacity_html(report: dict[str, Any]) -> str:
    """An HTML fragment (``<section>``) for a :func:`capacity_report` dict."""
    classes: dict[str, Any] = report.get("classes", {})
    target = report.get("targets", {}).get("pr_wait_p95_s")
    head = ("class", "devices", "utilisation", "occupancy", "queued", "backlog", "drain ETA", "PR wait p95",
            "nightly wait p95", "devices needed")
    body = []
    for cls, c in classes.items():
        need = c["devices_needed"]
        cells = (cls, f'{c["devices"]["in_service"]}/{c["devices"]["total"]}', pct(c["utilisation"]),
                 pct(c["occupancy"]), str(c["queue_depth"]["total"]), str(c["backlog_jobs"]),
                 secs(c["drain_eta_s"]), secs(c["waits"].get("pr", {}).get("p95_s")),
                 secs(c["waits"].get("nightly", {}).get("p95_s")),
                 f'{need["total"]} (+{need["add"]})' if need["add"] else str(need["total"]))
        body.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in cells) + "</tr>")
    use_rows = [(cls, [("busy", c["utilisation"] or 0.0), ("leased", (c["occupancy"] or 0) - (c["utilisation"] or 0))])
                for cls, c in classes.items()]
    wait_rows = [(f"{cls} {trig}", [("p50", w["p50_s"] or 0.0),
                                     ("p95", max(0.0, (w["p95_s"] or 0) - (w["p50_s"] or 0)))])
                 for cls, c in classes.items() for trig, w in c["waits"].items()]
    longest = max([sum(v for _, v in segs) for _, segs in wait_rows] + [target or 0.0, 1.0])
    window_h = report.get("window_s", 0) / 3600
    return "".join([
        '<section class="capacity"><h2>Capacity</h2>',
        f"<p>Window: last {window_h:.1f} h. {escape(report.get('model_note', ''))}.</p>",
        "<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>",
        *body, "</tbody></table>",
        _bars("Utilisation (busy, then leased) of in-service time", use_rows, 1.0, "×"),
        _bars("Queue wait p50 / p95 (s), dashed: PR target", wait_rows, longest, "s", target),
        "</section>",
    ])

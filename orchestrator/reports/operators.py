"""The report's "where the time goes" section: per cell, the top operators of its profiling
pass as an inline-SVG horizontal bar chart (offline, no scripts), each backend's share of
time and of operators, and the profile's provenance (measured ETDump or simulated)."""

from __future__ import annotations

from html import escape

from orchestrator.analysis.operators import backend_display, shares_text, top
from orchestrator.reports.data import Cell
from orchestrator.reports.tables import SIMULATED, backend_order, class_order, device_title
from orchestrator.reports.tables import backend_display as cell_backend
from orchestrator.store.profiles import CellProfile, OperatorRow

TOP_N = 12
WIDTH, ROW_H, LABEL_W, VALUE_W, PAD = 900, 22, 380, 150, 10
BACKEND_COLOURS = {"XNNPACK": "#268bd2", "CoreML": "#6c71c4", "MPS": "#2aa198", "CPU kernels": "#cb4b16"}
SIM_COLOUR = "#b58900"


def _colour(op: OperatorRow, simulated: bool) -> str:
    if simulated:
        return SIM_COLOUR
    return BACKEND_COLOURS.get(backend_display(op.backend if op.delegated else None), "#859900")


def operator_chart(title: str, prof: CellProfile, n: int = TOP_N) -> str:
    """Top ``n`` operators by mean time, one bar each, labelled with time and share."""
    ops = top(prof.operators, n)
    height = PAD * 2 + 22 + ROW_H * len(ops)
    biggest = max((op.mean_ms for op in ops), default=1.0) or 1.0
    plot_w = WIDTH - LABEL_W - VALUE_W - PAD * 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot operators" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{PAD}" y="{PAD + 10}" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, op in enumerate(ops):
        y = PAD + 22 + ROW_H * i
        label = op.name if not op.module_path else f"{op.name} · {op.module_path}"
        w = max(1.0, plot_w * op.mean_ms / biggest)
        where = backend_display(op.backend if op.delegated else None)
        parts.append(
            f'<g class="op-bar" data-op="{escape(op.name)}" data-ms="{op.mean_ms:.4f}">'
            f'<text x="{PAD}" y="{y + ROW_H / 2 + 4}" font-size="11">{escape(label[:60])}</text>'
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 6}" '
            f'fill="{_colour(op, prof.simulated)}"><title>{escape(op.name)} ({escape(where)}): '
            f"{op.mean_ms:.3f} ms mean, p50 {op.p50_ms:.3f} ms</title></rect>"
            f'<text x="{LABEL_W + w + 6:.1f}" y="{y + ROW_H / 2 + 4}" font-size="11">'
            f"{op.mean_ms:.3f} ms · {op.share * 100:.1f} %</text></g>")
    parts.append("</svg>")
    return "".join(parts)


def _provenance(prof: CellProfile) -> str:
    if prof.simulated:
        return (f'<span class="badge sim">{SIMULATED}</span> breakdown computed by the virtual device from the '
                "program's operator list and its latency model, not measured")
    method = f"Method::execute {prof.method_mean_ms:.3f} ms mean" if prof.method_mean_ms else ""
    total = sum(op.mean_ms for op in prof.operators)
    parts = [f"ETDump, {prof.iterations} untimed profiled iterations", method,
             f"operators sum {total:.3f} ms", "module paths from the ETRecord" if prof.etrecord else "no ETRecord"]
    return escape(" · ".join(p for p in parts if p))


def _cell_title(cell: Cell) -> str:
    k = cell.key
    return f"{device_title(k.device_class)} — {cell_backend(k.backend)} · {k.model} @{k.input_resolution}"


def operators_section(cells: list[Cell]) -> str:
    """The whole section ('' when no cell has a profile)."""
    with_profile = sorted((c for c in cells if c.profile is not None),
                          key=lambda c: (class_order(c.key.device_class), c.key.model, backend_order(c.key.backend),
                                         -c.key.input_resolution))
    if not with_profile:
        return ""
    blocks = []
    for cell in with_profile:
        prof = cell.profile
        assert prof is not None
        title = _cell_title(cell)
        if prof.status != "ok":
            blocks.append(f'<div class="profile failed"><h3>{escape(title)}</h3><p class="note">profiling pass '
                          f"failed ({escape(prof.error_category)}): {escape(prof.error)} — the timing result "
                          "is unaffected</p></div>")
            continue
        blocks.append(f'<div class="profile"><h3>{escape(title)}</h3>'
                      f'<p class="shares">{escape(shares_text(prof.operators))}</p>'
                      f"{operator_chart(f'Top operators — {title}', prof)}"
                      f'<p class="note">{_provenance(prof)}</p></div>')
    return ("<h2 id=\"operators\">Where the time goes — operator profiles</h2>"
            '<p class="note">Per cell, the operators that took the most time in a separate, untimed profiling pass '
            "(ExecuTorch event tracer): bar = mean time per inference, label = time and share of the method.</p>"
            + "".join(blocks))

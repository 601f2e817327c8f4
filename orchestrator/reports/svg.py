"""Inline SVG plots, generated here so the HTML report needs no library and no network.

Two kinds: horizontal box plots of per-iteration latency (p10/p25/median/p75/p90
whiskers-and-box, one row per backend) and trend lines of nightly medians with the
p10-p90 band and change points marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

import numpy as np

WIDTH = 900
ROW_H = 26
LABEL_W = 300
PAD = 12
COLOURS = {"sim": "#b58900", "real": "#268bd2", "change": "#dc322f", "grid": "#ddd", "text": "#333"}


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo or 1.0
    step = 10 ** np.floor(np.log10(span / n))
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= n:
            step *= mult
            break
    start = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(start, hi + step * 1e-9, step)]


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1 else f"{v:.2g}"


def box_plot(title: str, series: Sequence[tuple[str, Sequence[float], bool]]) -> str:
    """One box per (label, latencies, simulated); empty series are listed as 'no data'."""
    height = PAD * 2 + 24 + ROW_H * len(series) + 20
    values = [v for _, xs, _ in series for v in xs]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo, hi = max(0.0, lo - 0.05 * (hi - lo or 1)), hi + 0.05 * (hi - lo or 1)
    plot_w = WIDTH - LABEL_W - PAD * 2

    def x(v: float) -> float:
        return LABEL_W + plot_w * (v - lo) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot box" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{PAD}" y="{PAD + 10}" font-size="13" font-weight="bold">{escape(title)}</text>']
    axis_y = PAD + 24 + ROW_H * len(series)
    for t in _ticks(lo, hi):
        parts.append(f'<line x1="{x(t):.1f}" y1="{PAD + 20}" x2="{x(t):.1f}" y2="{axis_y}" '
                     f'stroke="{COLOURS["grid"]}"/><text x="{x(t):.1f}" y="{axis_y + 14}" font-size="10" '
                     f'text-anchor="middle">{_fmt(t)}</text>')
    for i, (label, xs, simulated) in enumerate(series):
        y = PAD + 24 + ROW_H * i
        name = escape(label + (" (simulated)" if simulated else ""))
        parts.append(f'<text x="{PAD}" y="{y + ROW_H / 2 + 4}" font-size="11">{name}</text>')
        if len(xs) == 0:
            parts.append(f'<text x="{LABEL_W}" y="{y + ROW_H / 2 + 4}" font-size="11" fill="#999">no data'
                         "</text>")
            continue
        p10, p25, p50, p75, p90 = np.percentile(xs, [10, 25, 50, 75, 90])
        colour = COLOURS["sim" if simulated else "real"]
        mid = y + ROW_H / 2
        parts.append(
            f'<g class="series"><title>{name}: median {p50:.2f} ms, p10-p90 {p10:.2f}-{p90:.2f} ms</title>'
            f'<line x1="{x(p10):.1f}" y1="{mid}" x2="{x(p90):.1f}" y2="{mid}" stroke="{colour}"/>'
            f'<rect x="{x(p25):.1f}" y="{y + 5}" width="{max(1.0, x(p75) - x(p25)):.1f}" height="{ROW_H - 10}" '
            f'fill="{colour}" fill-opacity="0.35" stroke="{colour}"/>'
            f'<line x1="{x(p50):.1f}" y1="{y + 4}" x2="{x(p50):.1f}" y2="{y + ROW_H - 4}" stroke="{colour}" '
            f'stroke-width="2"/></g>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{height - 4}" font-size="10" text-anchor="end">ms</text></svg>')
    return "".join(parts)


def trend_plot(title: str, points: Sequence[tuple[datetime, float | None, float | None, float | None, str]]) -> str:
    """Nightly medians (with p10-p90 band); points are (date, p10, median, p90, change)."""
    height = 180
    measured = [(i, p) for i, p in enumerate(points) if p[2] is not None]
    lows = [p[1] for _, p in measured if p[1] is not None]
    highs = [p[3] for _, p in measured if p[3] is not None]
    lo, hi = (min(lows), max(highs)) if measured else (0.0, 1.0)
    lo, hi = max(0.0, lo - 0.1 * (hi - lo or 1)), hi + 0.1 * (hi - lo or 1)
    left, right, top, bottom = 50, WIDTH - PAD, 28, height - 28
    n = max(1, len(points) - 1)

    def x(i: int) -> float:
        return left + (right - left) * i / n

    def y(v: float | None) -> float:  # only measured points (median present) are drawn
        return bottom - (bottom - top) * ((v if v is not None else lo) - lo) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot trend" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for t in _ticks(lo, hi, 4):
        parts.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{right}" y2="{y(t):.1f}" stroke="{COLOURS["grid"]}"/>'
                     f'<text x="{left - 4}" y="{y(t) + 3:.1f}" font-size="10" text-anchor="end">{_fmt(t)}</text>')
    if measured:
        band = [f"{x(i):.1f},{y(p[3]):.1f}" for i, p in measured] + [
            f"{x(i):.1f},{y(p[1]):.1f}" for i, p in reversed(measured)]
        parts.append(f'<polygon points="{" ".join(band)}" fill="{COLOURS["real"]}" fill-opacity="0.15"/>')
        line = " ".join(f"{x(i):.1f},{y(p[2]):.1f}" for i, p in measured)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{COLOURS["real"]}" stroke-width="2"/>')
    for i, (when, _p10, med, _p90, change) in enumerate(points):
        label = f"{when:%m-%d}"
        if med is None:
            parts.append(f'<text x="{x(i):.1f}" y="{bottom - 2}" font-size="11" fill="{COLOURS["change"]}" '
                         f'text-anchor="middle"><title>{label}: no result</title>×</text>')
            continue
        colour = COLOURS["change"] if change else COLOURS["real"]
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(med):.1f}" r="{5 if change else 3}" fill="{colour}">'
                     f'<title>{label}: median {med:.2f} ms{" — " + change if change else ""}</title></circle>')
    if points:  # first and last dates, anchored inwards so neither is clipped
        for i, anchor in sorted({(0, "start"), (len(points) - 1, "end")}):
            parts.append(f'<text x="{x(i):.1f}" y="{height - 8}" font-size="10" text-anchor="{anchor}">'
                         f'{points[i][0]:%Y-%m-%d}</text>')
    parts.append("</svg>")
    return "".join(parts)

"""Human formats shared by the CLI tables and the HTML section."""

from __future__ import annotations


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def secs(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.0f}s" if x < 600 else f"{x / 60:.0f}m" if x < 7200 else f"{x / 3600:.1f}h"

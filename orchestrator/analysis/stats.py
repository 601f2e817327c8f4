"""Per-cell latency statistics from every iteration of every repeat.

Outlier policy (the one place it is decided): samples beyond Tukey's *far-out*
fences (below Q1 - 3·IQR or above Q3 + 3·IQR) are excluded from the **mean** and the
**CV** only, and counted in ``outliers``. One-off hiccups (a GC pause, a background
wake-up) would otherwise dominate the mean and make the CV useless as a noise
indicator. Median and p10/p90 always use all samples: they are robust already, and
dropping samples from them would hide a real tail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FAR_OUT_IQR = 3.0


@dataclass(frozen=True)
class Stats:
    n: int
    median: float
    p10: float
    p90: float
    mean: float
    cv: float  # coefficient of variation of the non-outlier samples (stdev / mean)
    outliers: int
    minimum: float
    maximum: float
    p99: float  # for stability's tail ratio: computed with the others, in one pass over the samples


def summarize(samples: Sequence[float]) -> Stats | None:
    """Statistics of ``samples``, or ``None`` when there are none (nothing measured)."""
    if len(samples) == 0:
        return None
    x = np.asarray(samples, dtype=float)
    p10, q1, median, q3, p90, p99 = np.percentile(x, [10, 25, 50, 75, 90, 99])
    iqr = q3 - q1
    kept = x[(x >= q1 - FAR_OUT_IQR * iqr) & (x <= q3 + FAR_OUT_IQR * iqr)]
    mean = float(kept.mean())
    std = float(kept.std(ddof=1)) if len(kept) > 1 else 0.0
    return Stats(
        n=len(x), median=float(median), p10=float(p10), p90=float(p90), mean=mean,
        cv=std / mean if mean > 0 else 0.0, outliers=int(len(x) - len(kept)),
        minimum=float(x.min()), maximum=float(x.max()), p99=float(p99),
    )


def percentile(stats: Stats, name: str) -> float:
    """The statistic a budget names (``median``, ``p10``, ``p90``, ``mean``)."""
    return float(getattr(stats, name))


def _digits(value: float) -> int:
    # The seed writes "8-12 ms"; keep that look for phone-scale numbers and add digits
    # only when whole milliseconds would erase the number (host CPU runs of tiny models).
    if value >= 5:
        return 0
    return 1 if value >= 0.5 else 2


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.{_digits(value)}f} ms"


def fmt_range(stats: Stats | None) -> str:
    """The seed's inference range: p10-p90, e.g. ``8-12 ms``."""
    if stats is None:
        return "—"
    d = _digits(stats.p10)
    # A tight spread must not print as "8-8 ms": add a digit until the ends differ.
    while d < 2 and f"{stats.p10:.{d}f}" == f"{stats.p90:.{d}f}":
        d += 1
    return f"{stats.p10:.{d}f}-{stats.p90:.{d}f} ms"


MIB = 1024 * 1024


def fmt_mb(num_bytes: float | None) -> str:
    """Sizes and memory in MB of 2^20 bytes (what Xcode and iOS report as MB)."""
    if num_bytes is None:
        return "—"
    mb = num_bytes / MIB
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"

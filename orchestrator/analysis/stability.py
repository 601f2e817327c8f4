"""Stability as a figure of its own: how much a cell's (or a device's) numbers can be trusted.

Three figures per launch or cell, over its timed iterations:

- **CV**: the coefficient of variation, ``orchestrator.analysis.stats`` (the one definition:
  stdev / mean with far-out outliers excluded);
- **p99/p50**: the tail against the median (a GC pause, a thermal step, a background wake-up);
- **max/min**: the whole spread, outliers included.

A cell is **noisy** when its CV is above the run rule's ``noisy_cv`` (default 10 %); its
repeats **disagree** when their medians spread, (max - min) / median, by more than the rule's
``replication_tolerance`` (default 5 %): each repeat is its own launch (own job, possibly
another device of the class), so this is the replication check the pooled statistics cannot
make. A **device** is judged on the CVs of its recent results (one per job, kept as columns of
``results``): it is *degrading* when the median CV of its last ``RECENT`` results is at least
``DEGRADED_RATIO`` times that of the ``HISTORY`` results before them and above
``DEGRADED_FLOOR`` (a phone going from 1 % to 1.6 % is not news; from 2 % to 8 % is). Results
of different cells are pooled there, which is coarse: a device that suddenly runs a noisier
model mix can look degraded, and the flag says "look", not "broken".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.analysis.stats import Stats, summarize

RECENT = 5
HISTORY = 20
DEGRADED_RATIO = 1.5
DEGRADED_FLOOR = 0.05


@dataclass(frozen=True)
class Stability:
    n: int
    cv: float
    p99_p50: float
    max_min: float

    def noisy(self, noisy_cv: float) -> bool:
        return self.cv > noisy_cv

    def summary(self) -> str:
        return f"CV {100 * self.cv:.1f} %, p99/p50 {self.p99_p50:.2f}, max/min {self.max_min:.2f}"


def of_samples(samples: Sequence[float], st: Stats | None = None) -> Stability | None:
    """The three figures over ``samples`` (None without samples, or with a non-positive one);
    ``st``: their :func:`summarize`, when the caller has it already (it is not computed twice)."""
    st = st if st is not None else summarize(samples)
    if st is None or st.minimum <= 0:
        return None
    # np.percentile's 99th and 50th, as summarize computes them (one pass: this runs per recorded job)
    return Stability(n=st.n, cv=st.cv, p99_p50=st.p99 / st.median, max_min=st.maximum / st.minimum)


def replication_spread(repeat_medians: Sequence[float]) -> float | None:
    """(max - min) / median of the repeats' medians; None with fewer than two repeats."""
    if len(repeat_medians) < 2:
        return None
    mid = statistics.median(repeat_medians)
    return (max(repeat_medians) - min(repeat_medians)) / mid if mid > 0 else None


def flags(stab: Stability | None, spread: float | None, noisy_cv: float, tolerance: float) -> list[str]:
    """What a table's notes say about a cell: ``noisy (CV 35.2 % > 10 %)``, ``repeats disagree (7 % > 5 %)``."""
    out = []
    if stab is not None and stab.noisy(noisy_cv):
        out.append(f"noisy (CV {100 * stab.cv:.1f} % > {100 * noisy_cv:g} %)")
    if spread is not None and spread > tolerance:
        out.append(f"repeats disagree ({100 * spread:.0f} % > {100 * tolerance:g} %)")
    return out


@dataclass(frozen=True)
class DeviceStability:
    results: int
    recent_cv: float  # median CV of the last RECENT results
    earlier_cv: float | None  # median CV of the HISTORY results before them (None: too few)
    noisy: bool
    degrading: bool

    def label(self) -> str:
        """``CV 2.1%``, ``noisy: CV 14.0%``, ``degrading: CV 2.0→9.0%`` (earlier → recent)."""
        if self.degrading and self.earlier_cv is not None:
            return f"degrading: CV {100 * self.earlier_cv:.1f}→{100 * self.recent_cv:.1f}%"
        return f"{'noisy: ' if self.noisy else ''}CV {100 * self.recent_cv:.1f}%"


def device_stability(cvs_newest_first: Sequence[float], noisy_cv: float = 0.10) -> DeviceStability | None:
    """A device's stability from its results' CVs, newest first (None without results)."""
    if not cvs_newest_first:
        return None
    recent = list(cvs_newest_first[:RECENT])
    earlier = list(cvs_newest_first[RECENT:RECENT + HISTORY])
    recent_cv = statistics.median(recent)
    earlier_cv = statistics.median(earlier) if len(earlier) >= 3 else None
    degrading = (earlier_cv is not None and len(recent) == RECENT and recent_cv > DEGRADED_FLOOR
                 and recent_cv >= DEGRADED_RATIO * earlier_cv)
    return DeviceStability(len(recent) + len(earlier), recent_cv, earlier_cv, recent_cv > noisy_cv, degrading)

"""Regression verdicts between two sets of per-iteration latencies (iteration level).

This treats every iteration as an independent sample, which they are not: iterations of
one launch share its state, so the interval here is too narrow whenever launches differ
(see :mod:`orchestrator.analysis.launches`, which interleaved A/B cells use instead).
It remains the method for comparisons that have only one launch per side (a PR cell
against a stored run without in-lease A/B, nightly trends), and the "before" figure of
``bench/ab_calibration.py``. The test is unpaired: the two sets are independent samples.

A cell is *slower* / *faster* only when both hold:
  1. the distributions differ: two-sided Mann-Whitney U with p < ``alpha`` (no
     normality assumption; latency samples are skewed and heavy-tailed), and the
     bootstrap 95 % CI of the median ratio (candidate / baseline) excludes 1;
  2. the change matters: the median ratio moves by at least ``min_effect`` (5 % by
     default), so a statistically clear 1 % shift on a quiet device is still
     "within noise". A fixed threshold alone (what ExecuTorch's dashboard does,
     issue #6202) flags noise; a test alone flags irrelevant shifts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu

ALPHA = 0.01
BOOTSTRAP_RESAMPLES = 2000
# Fixed seed: the same inputs always give the same verdict (a PR comment must not flip
# when the report is regenerated).
BOOTSTRAP_SEED = 20240601
MIN_SAMPLES = 5

VerdictName = Literal["faster", "slower", "within noise", "unknown", "insufficient data"]


@dataclass(frozen=True)
class Verdict:
    verdict: VerdictName
    ratio: float | None  # median(candidate) / median(baseline); > 1 means slower
    p_value: float | None
    ci: tuple[float, float] | None  # CI of the ratio at ``level``
    level: float = 0.95
    # launch-level verdicts (interleaved A/B): rounds compared, and why the agent stopped adding them
    rounds: int | None = None
    stop_reason: str = ""

    @property
    def change_pct(self) -> float | None:
        return None if self.ratio is None else 100.0 * (self.ratio - 1.0)


def _bootstrap_medians(x: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    # Sorting the resample matrix is ~3x faster than np.median(axis=1), which matters when
    # trends compare every consecutive pair of nightly runs of every cell.
    n = len(x)
    s = np.sort(x[rng.integers(0, n, size=(resamples, n))], axis=1)
    return s[:, n // 2] if n % 2 else (s[:, n // 2 - 1] + s[:, n // 2]) / 2


def bootstrap_median_ratio_ci(
    baseline: np.ndarray, candidate: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95
) -> tuple[float, float]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    b = _bootstrap_medians(baseline, rng, resamples)
    c = _bootstrap_medians(candidate, rng, resamples)
    ratios = c / np.where(b > 0, b, np.nan)
    lo, hi = np.nanpercentile(ratios, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def compare_cells(
    baseline: Sequence[float], candidate: Sequence[float], min_effect: float = 0.05, alpha: float = ALPHA
) -> Verdict:
    """Verdict for one cell: per-iteration latencies of the baseline vs the candidate."""
    if len(baseline) < MIN_SAMPLES or len(candidate) < MIN_SAMPLES:
        return Verdict("insufficient data", None, None, None)
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    base_median = float(np.median(b))
    if base_median <= 0:
        return Verdict("insufficient data", None, None, None)
    ratio = float(np.median(c)) / base_median
    p_value = float(mannwhitneyu(b, c, alternative="two-sided").pvalue)
    ci = bootstrap_median_ratio_ci(b, c)
    differs = p_value < alpha and (ci[0] > 1.0 or ci[1] < 1.0)
    if differs and ratio >= 1.0 + min_effect:
        return Verdict("slower", ratio, p_value, ci)
    if differs and ratio <= 1.0 - min_effect:
        return Verdict("faster", ratio, p_value, ci)
    return Verdict("within noise", ratio, p_value, ci)

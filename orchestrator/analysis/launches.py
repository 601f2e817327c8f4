"""A/B verdicts at the level of launches: per-round ratios, a paired t-interval over rounds.

Why launches: iterations inside one harness launch share that launch's state (memory
layout, clocks, thermal state, caches, neighbours on the CPU) and are autocorrelated, so
treating them as independent samples — what :func:`regression.compare_cells` does with
Mann-Whitney and an iteration bootstrap — makes the interval as narrow as the number of
iterations allows, however much the *launches* disagree. The unit of replication is the
launch (Kalibera & Jones, "Rigorous benchmarking in reasonable time", 2013).

Method (what the PR verdict of an interleaved A/B cell uses):
  1. every launch is summarised by its median latency;
  2. the launches of an ABBA attempt pair up by round (launches 2k and 2k+1: one A, one
     B, on the same device within seconds of each other), giving one ratio per round,
     ``median(A) / median(B)`` (A = the PR's program, B = the baseline's; > 1 is slower);
  3. on the log ratios: mean, standard error over rounds and a Student-t interval with
     ``rounds - 1`` degrees of freedom — a *paired t-test on per-round log medians*. The
     ratio reported is the geometric mean of the per-round ratios.
  4. three outcomes (as Chromium's Pinpoint):
     - *different* (slower / faster): the interval excludes 1 **and** the ratio moves by
       at least ``min_effect`` (a clear 1 % shift is not worth failing a PR over);
     - *same* (within noise): the whole interval lies inside the equivalence margin
       ``[1/(1+margin), 1+margin]`` — the change, if any, is smaller than the margin;
     - *unknown*: neither yet; more rounds may decide it.
  Sequential looks: the adaptive A/B loop (``agents/ab.py``) looks after the minimum
  rounds and after every further round, up to ``looks`` times; each look uses
  ``alpha / looks`` (Bonferroni), so the chance of ever calling an A/A pair "different"
  stays below ``alpha`` however many rounds it took.

Why not a bootstrap over rounds: with the 2–16 rounds a PR can afford, a percentile
bootstrap of the round mean has far too few distinct resamples and undercovers (with 4
rounds its 99 % interval is about the range of the 4 ratios, which misses the true ratio
~1 time in 8). ``bootstrap_rounds_ci`` is kept for ``bench/ab_calibration.py``, which
measures exactly that against the t-interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

ALPHA = 0.01
MIN_ROUNDS = 2  # one ratio has no spread: at least two rounds before any verdict
Outcome = Literal["different", "same", "unknown"]


@dataclass(frozen=True)
class RoundsDecision:
    outcome: Outcome
    verdict: str  # "slower" | "faster" | "within noise" | "unknown" | "insufficient data"
    ratio: float | None  # geometric mean of per-round A/B ratios
    ci: tuple[float, float] | None
    level: float  # confidence level of ``ci`` (1 - alpha/looks)
    p_value: float | None
    rounds: int


def paired_medians(rounds: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """(A median, B median) per complete round, from launch summaries in launch order
    (``agents.ab.round_summary``), grouped by their ``round`` index (older reports without
    one: consecutive launches). A round whose partner launch is missing is dropped."""
    groups: dict[Any, dict[str, float]] = {}
    for i, launch in enumerate(rounds):
        try:  # stored agent input: a malformed entry is skipped, never trusted
            groups.setdefault(int(launch.get("round", i // 2)), {})[str(launch["arm"])] = float(launch["median_ms"])
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
    return [(g["A"], g["B"]) for g in groups.values()
            if set(g) == {"A", "B"} and g["A"] > 0 and g["B"] > 0]


def round_ratios(rounds: Sequence[Mapping[str, Any]]) -> list[float]:
    return [a / b for a, b in paired_medians(rounds)]


@lru_cache(maxsize=4096)
def _t_quantile(q: float, df: int) -> float:
    return float(sps.t.ppf(q, df))


def _t_interval(logs: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """(mean, lo, hi, two-sided p of mean == 0) of the log ratios: the one-sample t."""
    n = len(logs)
    mean = float(logs.mean())
    se = float(logs.std(ddof=1)) / math.sqrt(n)
    half = _t_quantile(0.5 + level / 2, n - 1) * se
    p_value = float(2 * sps.t.sf(abs(mean) / se, n - 1))
    return mean, mean - half, mean + half, p_value


def decide(ratios: Sequence[float], min_effect: float = 0.05, margin: float | None = None,
           alpha: float = ALPHA, looks: int = 1) -> RoundsDecision:
    """The three-outcome verdict for per-round ratios (PR / baseline) at one look of ``looks``."""
    margin = min_effect if margin is None else margin
    level = 1.0 - alpha / max(1, looks)
    n = len(ratios)
    if n < MIN_ROUNDS:
        ratio = float(ratios[0]) if n else None
        return RoundsDecision("unknown", "insufficient data", ratio, None, level, None, n)
    logs = np.log(np.asarray(ratios, dtype=float))
    if float(logs.std(ddof=1)) == 0.0:  # identical rounds: the interval is the point itself
        mean = lo = hi = float(logs.mean())
        p_value = 1.0 if mean == 0.0 else 0.0
    else:
        mean, lo, hi, p_value = _t_interval(logs, level)
    ratio, ci = math.exp(mean), (math.exp(lo), math.exp(hi))
    if (ci[0] > 1.0 or ci[1] < 1.0) and abs(ratio - 1.0) >= min_effect:
        return RoundsDecision("different", "slower" if ratio > 1 else "faster", ratio, ci, level, p_value, n)
    if ci[0] >= 1.0 / (1.0 + margin) and ci[1] <= 1.0 + margin:
        return RoundsDecision("same", "within noise", ratio, ci, level, p_value, n)
    return RoundsDecision("unknown", "unknown", ratio, ci, level, p_value, n)


def looks_for(min_rounds: int, max_rounds: int) -> int:
    """How many times the adaptive loop may look: after the minimum, then every round."""
    return max(1, max_rounds - max(min_rounds, MIN_ROUNDS) + 1)


def bootstrap_rounds_ci(ratios: Sequence[float], level: float = 0.99, resamples: int = 2000,
                        seed: int = 20240601) -> tuple[float, float]:
    """Percentile bootstrap over rounds of the geometric-mean ratio (for calibration only)."""
    logs = np.log(np.asarray(ratios, dtype=float))
    rng = np.random.default_rng(seed)
    means = logs[rng.integers(0, len(logs), size=(resamples, len(logs)))].mean(axis=1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return math.exp(float(lo)), math.exp(float(hi))


def launch_interval(medians: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Uncertainty of a cell's typical latency from its launches (repeats): a t-interval of
    the geometric mean of per-launch medians; ``None`` with fewer than two launches (one
    launch says nothing about launch-to-launch variation)."""
    if len(medians) < 2 or min(medians) <= 0:
        return None
    logs = np.log(np.asarray(medians, dtype=float))
    if float(logs.std(ddof=1)) == 0.0:
        v = math.exp(float(logs.mean()))
        return v, v
    _, lo, hi, _ = _t_interval(logs, level)
    return math.exp(lo), math.exp(hi)


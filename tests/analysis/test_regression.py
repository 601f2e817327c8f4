"""Regression verdicts on synthetic A/B data (seeded RNG: the rates are reproducible)."""

from __future__ import annotations

import numpy as np

from orchestrator.analysis.regression import compare_cells

TRIALS = 200


def _trials(shift: float, cv: float, n: int, seed: int, dist: str = "normal") -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for _ in range(TRIALS):
        if dist == "normal":
            base, cand = rng.normal(10.0, 10.0 * cv, n), rng.normal(10.0 * shift, 10.0 * shift * cv, n)
        else:  # right-skewed latencies with occasional spikes, as phones produce
            base = 10.0 * rng.lognormal(0, cv, n) + rng.exponential(0.5, n) * (rng.random(n) < 0.05) * 20
            cand = shift * (10.0 * rng.lognormal(0, cv, n) + rng.exponential(0.5, n) * (rng.random(n) < 0.05) * 20)
        v = compare_cells(list(base), list(cand)).verdict
        counts[v] = counts.get(v, 0) + 1
    return counts


def test_same_distribution_is_within_noise_in_95_percent() -> None:
    counts = _trials(1.0, 0.03, 50, seed=1)
    assert counts.get("within noise", 0) >= 0.95 * TRIALS, counts


def test_same_skewed_distribution_is_within_noise_in_95_percent() -> None:
    counts = _trials(1.0, 0.10, 50, seed=2, dist="lognormal")
    assert counts.get("within noise", 0) >= 0.95 * TRIALS, counts


def test_ten_percent_slowdown_is_slower_in_95_percent() -> None:
    counts = _trials(1.10, 0.03, 50, seed=3)
    assert counts.get("slower", 0) >= 0.95 * TRIALS, counts


def test_ten_percent_speedup_is_faster() -> None:
    counts = _trials(0.90, 0.03, 50, seed=4)
    assert counts.get("faster", 0) >= 0.95 * TRIALS, counts


def test_clear_but_small_shift_stays_within_noise() -> None:
    # 2 % slower with almost no noise: statistically clear, but below the 5 % minimum effect.
    rng = np.random.default_rng(5)
    base, cand = rng.normal(10, 0.02, 200), rng.normal(10.2, 0.02, 200)
    v = compare_cells(list(base), list(cand), min_effect=0.05)
    assert v.p_value is not None and v.p_value < 1e-6
    assert v.verdict == "within noise"
    assert compare_cells(list(base), list(cand), min_effect=0.01).verdict == "slower"


def test_verdict_fields() -> None:
    rng = np.random.default_rng(6)
    base, cand = rng.normal(10, 0.3, 50), rng.normal(12, 0.36, 50)
    v = compare_cells(list(base), list(cand))
    assert v.verdict == "slower"
    assert 1.15 < v.ratio < 1.25
    assert v.ci is not None and v.ci[0] <= v.ratio <= v.ci[1] and v.ci[0] > 1.0
    assert 15 < v.change_pct < 25
    assert compare_cells(list(base), list(cand)) == v  # deterministic: a PR comment must not flip


def test_too_few_samples_gives_no_verdict() -> None:
    v = compare_cells([1.0, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert v.verdict == "insufficient data" and v.ratio is None

"""Launch-level A/B verdicts (orchestrator.analysis.launches) on seeded synthetic rounds.

The synthetic data has what iteration-level tests ignore: every launch carries its own
offset (launch-level noise) on top of iteration noise, so rounds — not iterations — are
the unit of replication. Rates use a fixed seed and are reproducible."""

from __future__ import annotations

import numpy as np

from orchestrator.analysis.launches import (
    decide,
    launch_interval,
    looks_for,
    paired_medians,
    round_ratios,
)
from orchestrator.analysis.regression import compare_cells

TRIALS = 200


def _launch(rng: np.random.Generator, scale: float, launch_sd: float, n: int = 20) -> np.ndarray:
    return scale * np.exp(rng.normal(0, launch_sd)) * rng.lognormal(0, 0.03, n)


def test_rounds_pair_by_round_index_and_drop_incomplete_rounds() -> None:
    launches = [{"arm": "A", "median_ms": 2.0, "round": 0}, {"arm": "B", "median_ms": 1.0, "round": 0},
                {"arm": "B", "median_ms": 4.0, "round": 1}, {"arm": "A", "median_ms": 5.0, "round": 1},
                {"arm": "A", "median_ms": 9.0, "round": 2}]  # round 2's baseline launch failed
    assert paired_medians(launches) == [(2.0, 1.0), (5.0, 4.0)]
    assert round_ratios(launches) == [2.0, 1.25]
    # older reports without a round index: consecutive launches form the rounds
    assert round_ratios([{k: v for k, v in x.items() if k != "round"} for x in launches[:4]]) == [2.0, 1.25]


def test_fewer_than_two_rounds_decide_nothing() -> None:
    d = decide([1.3])
    assert (d.outcome, d.verdict, d.ci, d.rounds) == ("unknown", "insufficient data", None, 1)


def test_three_outcomes() -> None:
    slower = decide([1.20, 1.22, 1.19, 1.21, 1.20])
    assert (slower.outcome, slower.verdict) == ("different", "slower") and slower.ci[0] > 1.0
    faster = decide([0.80, 0.82, 0.79, 0.81])
    assert (faster.outcome, faster.verdict) == ("different", "faster")
    same = decide([1.001, 0.999, 1.002, 0.998, 1.0, 1.001])
    assert (same.outcome, same.verdict) == ("same", "within noise")
    assert 1 / 1.05 <= same.ci[0] <= same.ci[1] <= 1.05
    wide = decide([1.15, 0.9, 1.2, 0.95])  # rounds disagree: neither decided
    assert (wide.outcome, wide.verdict) == ("unknown", "unknown") and wide.ci[0] < 1.0 < wide.ci[1]


def test_clear_but_small_shift_is_not_different() -> None:
    d = decide([1.02, 1.021, 1.019, 1.02, 1.02, 1.021], min_effect=0.05)
    assert d.ci[0] > 1.0 and d.outcome == "same"  # 2 %: inside the 5 % equivalence margin


def test_more_looks_widen_the_interval() -> None:
    one, many = decide([1.08, 1.1, 1.12, 1.09]), decide([1.08, 1.1, 1.12, 1.09], looks=13)
    assert many.level > one.level and many.ci[1] - many.ci[0] > one.ci[1] - one.ci[0]
    assert looks_for(4, 16) == 13 and looks_for(2, 2) == 1 and looks_for(1, 4) == 3


def test_launch_noise_fools_the_iteration_test_but_not_the_round_test() -> None:
    """A/A with 8 % launch-to-launch noise: the iteration-level test calls many pairs
    different; the round-level test almost never does."""
    rng = np.random.default_rng(7)
    iteration_alarms = round_alarms = 0
    for _ in range(TRIALS):
        a = [_launch(rng, 10.0, 0.08) for _ in range(4)]
        b = [_launch(rng, 10.0, 0.08) for _ in range(4)]
        iteration_alarms += compare_cells(np.concatenate(b), np.concatenate(a)).verdict in ("slower", "faster")
        ratios = [float(np.median(x) / np.median(y)) for x, y in zip(a, b, strict=True)]
        round_alarms += decide(ratios).outcome == "different"
    assert iteration_alarms > 0.2 * TRIALS, iteration_alarms
    assert round_alarms <= 0.02 * TRIALS, round_alarms


def test_ten_percent_slowdown_is_found_with_enough_rounds() -> None:
    rng = np.random.default_rng(8)
    found = 0
    for _ in range(TRIALS):
        ratios = [float(np.median(_launch(rng, 11.0, 0.02)) / np.median(_launch(rng, 10.0, 0.02)))
                  for _ in range(8)]
        found += decide(ratios).verdict == "slower"
    assert found >= 0.95 * TRIALS, found


def test_launch_interval_needs_two_launches() -> None:
    assert launch_interval([10.0]) is None
    lo, hi = launch_interval([10.0, 10.5, 9.8, 10.2])
    assert lo < 10.1 < hi


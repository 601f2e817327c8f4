"""Verdict rates of orchestrator.analysis.regression.compare_cells on synthetic A/B data.

Writes bench/results/reports_ab_rates.json: for each scenario (true slowdown, noise
level, iterations, distribution) the share of 200 trials judged slower / faster /
within noise, and the mean time per comparison. Seeded: rerunning gives the same rates.

    python bench/reports_ab_rates.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from orchestrator.analysis.regression import compare_cells

TRIALS = 200
OUT = Path(__file__).parent / "results" / "reports_ab_rates.json"


def draw(rng: np.random.Generator, scale: float, cv: float, n: int, dist: str) -> np.ndarray:
    if dist == "normal":
        return rng.normal(10.0 * scale, 10.0 * scale * cv, n)
    spikes = rng.exponential(0.5, n) * (rng.random(n) < 0.05) * 20  # 5 % hiccups
    return scale * (10.0 * rng.lognormal(0, cv, n) + spikes)


def scenario(shift: float, cv: float, n: int, dist: str, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    counts = {"slower": 0, "faster": 0, "within noise": 0, "insufficient data": 0}
    started = time.perf_counter()
    for _ in range(TRIALS):
        v = compare_cells(list(draw(rng, 1.0, cv, n, dist)), list(draw(rng, shift, cv, n, dist)))
        counts[v.verdict] += 1
    elapsed = time.perf_counter() - started
    return {"shift": shift, "cv": cv, "iterations": n, "distribution": dist, "trials": TRIALS,
            "rates": {k: v / TRIALS for k, v in counts.items()}, "ms_per_comparison": 1000 * elapsed / TRIALS}


def main() -> None:
    grid = [(1.0, 0.03, 50, "normal"), (1.0, 0.10, 50, "lognormal"), (1.0, 0.03, 20, "normal"),
            (1.05, 0.03, 50, "normal"), (1.10, 0.03, 50, "normal"), (1.10, 0.03, 20, "normal"),
            (1.10, 0.10, 50, "lognormal"), (1.20, 0.10, 50, "lognormal"), (0.90, 0.03, 50, "normal")]
    results = [scenario(*g, seed=i) for i, g in enumerate(grid)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"benchmark": "reports_ab_rates", "results": results}, indent=1) + "\n")
    for r in results:
        rates = ", ".join(f"{k} {v:.0%}" for k, v in r["rates"].items() if v)
        print(f"shift {r['shift']:.2f} cv {r['cv']:.2f} n {r['iterations']:3d} {r['distribution']:9s}: {rates} "
              f"({r['ms_per_comparison']:.1f} ms/comparison)")


if __name__ == "__main__":
    main()

"""Latency summary statistics stored with every result (the full samples stay in the document)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    median: float
    p10: float
    p90: float
    mean: float
    cv: float
    n: int


def latency_stats(samples: list[float]) -> LatencyStats:
    a = np.asarray(samples, dtype=float)
    if a.size == 0:
        raise ValueError("no latency samples")
    mean = float(a.mean())
    return LatencyStats(
        median=float(np.median(a)), p10=float(np.percentile(a, 10)), p90=float(np.percentile(a, 90)),
        mean=mean, cv=float(a.std() / mean) if mean > 0 else 0.0, n=int(a.size),
    )

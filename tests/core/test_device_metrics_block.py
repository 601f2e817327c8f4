"""The agent's device_metrics block: added only by the agent, energy per inference from the harness's
latencies, merged over the launches of an A/B arm."""

from __future__ import annotations

import pytest

from agents import ab, device_metrics
from agents.harness.contract import ContractError
from tests.core.test_ab import _doc


class _Driver:
    def __init__(self, block: dict | None) -> None:
        self.block = block

    def take_device_metrics(self, device: object, job: dict) -> dict | None:
        block, self.block = self.block, None
        return block


def _block(peak: int, cpu: float, compute_mw: float, samples: int = 4) -> dict:
    return {"simulated": True, "window_s": 1.0, "interval_s": 0.05, "battery": None, "missing": [],
            "memory": {"source": "dvt.sysmontap", "samples": samples, "peak_footprint_bytes": peak,
                       "mean_footprint_bytes": peak - 100, "mean_cpu_pct": cpu, "peak_cpu_pct": cpu + 10},
            "energy": {"source": "dvt.energy", "samples": samples, "mean_cost_mw": compute_mw + 8,
                       "mean_compute_cost_mw": compute_mw}}


def test_attach_computes_energy_per_inference_and_refuses_a_harness_claim() -> None:
    doc = _doc([10.0, 30.0], 1000, ("nominal", "nominal"))
    out = device_metrics.attach(_Driver(_block(5000, 300.0, 2000.0)), None, {}, doc)
    # 2000 mW over a 20 ms mean inference = 40 mJ
    assert out["device_metrics"]["energy"]["energy_mj_per_inference"] == pytest.approx(40.0)
    assert out["peak_memory_bytes"] == 1000  # the harness's own figure is untouched
    assert device_metrics.attach(_Driver(None), None, {}, doc) is doc  # nothing sampled: nothing added
    assert device_metrics.attach(object(), None, {}, doc) is doc  # a driver without device figures
    with pytest.raises(ContractError, match="only the agent adds it"):
        device_metrics.attach(_Driver(None), None, {}, dict(doc, device_metrics=_block(1, 1.0, 1.0)))


def test_an_arms_launches_merge_peaks_and_weighted_means() -> None:
    docs = [device_metrics.attach(_Driver(_block(5000, 300.0, 2000.0, samples=2)), None, {},
                                  _doc([10.0], 1000, ("nominal", "fair"))),
            device_metrics.attach(_Driver(_block(7000, 400.0, 1000.0, samples=6)), None, {},
                                  _doc([20.0], 1100, ("fair", "fair")))]
    merged = ab.merge_documents(docs)["device_metrics"]
    assert merged["launches"] == 2 and merged["memory"]["samples"] == 8
    assert merged["memory"]["peak_footprint_bytes"] == 7000 and merged["memory"]["mean_cpu_pct"] == 375.0
    assert merged["energy"]["mean_compute_cost_mw"] == 1250.0  # (2 x 2000 + 6 x 1000) / 8
    assert merged["energy"]["energy_mj_per_inference"] == pytest.approx((2 * 20.0 + 6 * 20.0) / 8)
    # a launch without device figures leaves the others' block as it was
    alone = ab.merge_documents([docs[0], _doc([5.0], 900, ("fair", "fair"))])["device_metrics"]
    assert alone["memory"]["peak_footprint_bytes"] == 5000

"""The device's own figures beside the harness's: attached to a result document, merged over launches.

A driver that can watch the harness from the device side (the iOS driver: DVT sysmontap and
the energy gauge, ``agents.drivers.ios_metrics``) offers ``take_device_metrics(device, job)``
after ``run``. The agent adds that block to the harness's document as ``device_metrics`` only
after the document passed the contract on its own, so a harness can never claim device figures
(a document that already carries the key is refused).
"""

from __future__ import annotations

import statistics
from typing import Any

from agents.harness.contract import ContractError, validate_result

KEY = "device_metrics"


def attach(driver: Any, device: Any, job: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the driver's ``device_metrics`` for this launch, when it has any."""
    if KEY in doc:
        raise ContractError(f"result document invalid at $.{KEY}: written by the harness; only the agent adds it")
    take = getattr(driver, "take_device_metrics", None)
    block = take(device, job) if take is not None else None
    if not block:
        return doc
    block = dict(block)
    energy = block.get("energy")
    if energy is not None:
        lat = doc.get("latencies_ms") or []
        # mW x ms = uJ: the compute part of the process's draw over one mean inference, in mJ
        energy = dict(energy, energy_mj_per_inference=round(
            energy["mean_compute_cost_mw"] * statistics.fmean(lat) / 1000, 4) if lat else None)
        block["energy"] = energy
    return validate_result({**doc, KEY: block})


def _weighted(blocks: list[dict[str, Any]], part: str, key: str) -> float | None:
    pairs = [(b[part][key], b[part]["samples"]) for b in blocks if b.get(part) and b[part].get(key) is not None]
    total = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / total if total else None


def merge(blocks: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """One block for several launches of the same arm (peaks are maxima, means sample-weighted)."""
    present = [b for b in blocks if b]
    if len(present) <= 1:
        return present[0] if present else None
    out: dict[str, Any] = {"simulated": any(b["simulated"] for b in present),
                           "window_s": round(sum(b["window_s"] for b in present), 3),
                           "launches": sum(int(b.get("launches", 1)) for b in present),
                           "battery": next((b["battery"] for b in reversed(present) if b.get("battery")), None),
                           "memory": None, "energy": None}
    mems = [b["memory"] for b in present if b.get("memory")]
    if mems:
        out["memory"] = {"source": "dvt.sysmontap", "samples": sum(m["samples"] for m in mems),
                         "peak_footprint_bytes": max(m["peak_footprint_bytes"] for m in mems),
                         "mean_footprint_bytes": int(_weighted(present, "memory", "mean_footprint_bytes") or 0),
                         "mean_cpu_pct": _rounded(_weighted(present, "memory", "mean_cpu_pct"), 2),
                         "peak_cpu_pct": max((m["peak_cpu_pct"] for m in mems if m.get("peak_cpu_pct") is not None),
                                             default=None)}
    if any(b.get("energy") for b in present):
        out["energy"] = {"source": "dvt.energy", "samples": sum(b["energy"]["samples"] for b in present
                                                                if b.get("energy")),
                         "mean_cost_mw": _rounded(_weighted(present, "energy", "mean_cost_mw"), 3),
                         "mean_compute_cost_mw": _rounded(_weighted(present, "energy", "mean_compute_cost_mw"), 3),
                         "energy_mj_per_inference": _rounded(_weighted(present, "energy", "energy_mj_per_inference"),
                                                             4)}
    missing = {(m["source"], m["reason"]) for b in present for m in b.get("missing", [])}
    out["missing"] = [{"source": s, "reason": r} for s, r in sorted(missing)][:8]
    return out


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)

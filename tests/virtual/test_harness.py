"""The simulated harness, driven exactly as the iOS driver drives a phone: install, push, DVT launch, pull."""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
from pathlib import Path

import pytest

from agents.harness.contract import parse_result, validate_result
from agents.virtual.device import HARNESS_BUNDLE_ID, VirtualDevice
from agents.virtual.harness import benchmark
from agents.virtual.perf_model import Workload, model, simulate
from agents.virtual.testing import FleetHandle
from tests.virtual.helpers import lockdown, make_job, run_harness, stage_harness

pytestmark = pytest.mark.timeout(60)
REF = int(10.18e6)  # the reference XNNPACK fp32 MobileNetV3-Small program, bytes


def test_harness_writes_a_valid_simulated_result(fleet: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    model_bytes = os.urandom(200_000)
    job = make_job(model_bytes, backend="coreml", iterations=40, warmup=3)

    async def scenario():
        ld = await lockdown(fleet.udids[0], client_home)
        await stage_harness(ld, tmp_path, job, model_bytes)
        started = time.monotonic()
        pid, raw, running = await run_harness(ld)
        await ld.close()
        return pid, raw, running, time.monotonic() - started

    pid, raw, running, took = asyncio.run(scenario())
    assert pid > 0 and running == 0
    doc = parse_result(raw)
    assert doc["simulated"] is True and doc["producer"]["name"] == "virtual-harness"
    assert (doc["job_id"], doc["attempt_id"], doc["attempt_token"]) == ("job-1", "att-1", 7)
    assert doc["status"] == "ok", doc.get("error")
    assert len(doc["latencies_ms"]) == 40 and len(doc["warmup_latencies_ms"]) == 3
    assert doc["device"]["model"] == "iPhone16,1" and doc["device"]["chip"] == "A17 Pro"
    assert doc["device"]["udid"] == fleet.udids[0]
    assert doc["peak_memory_bytes"] > 0 and doc["energy_mj_per_inference"] > 0
    assert doc["thermal_before"] == "nominal" and doc["battery_before"]["level"] == 87
    assert took < 10
    # the seed's frame stages, simulated like the inference and labelled so
    fp = doc["frame_pipeline"]
    assert (fp["simulated"], fp["source"], fp["iterations"]) == (True, "simulated", 40)
    assert len(doc["preprocess_ms"]) == len(doc["postprocess_ms"]) == 40
    assert fp["preprocess"].startswith("simulated")


@pytest.mark.parametrize(("chip", "factor"), [("A17-Pro", 1.0), ("A15", 1.41), ("M2", 0.83)])
def test_frame_stages_follow_the_seed_resolution_table(chip: str, factor: float) -> None:
    """Strategy 2: preprocessing 8 / 4 / 3 ms at 224 / 160 / 128 (the reference chip's), scaled by
    the chip's CPU speed; postprocessing is not in the seed (~0.1 ms)."""
    m = model()
    for res, seed_ms in ((224, 8.0), (160, 4.0), (128, 3.0)):
        work = Workload("coreml", int(5.09e6), res, 1, warmup=2, iterations=400,
                        timeout_s=1e9, frame=True)
        run = simulate(m, chip, work, heat_s=0.0, rng=random.Random(2))
        assert run is not None and len(run.preprocess_ms) == len(run.latencies_ms) == 400
        assert statistics.median(run.preprocess_ms) == pytest.approx(seed_ms * factor, rel=0.05)
        assert statistics.median(run.postprocess_ms) == pytest.approx(0.1, rel=0.05)
    plain = simulate(m, chip, Workload("coreml", int(5.09e6), 224, 1, 0, 10, 1e9), 0.0, random.Random(2))
    assert plain is not None and plain.preprocess_ms == []  # not an image input: no camera frame


def _median(chip: str, backend: str, pte_bytes: int, resolution: int = 224, batch: int = 1, n: int = 400) -> float:
    work = Workload(backend, pte_bytes, resolution, batch, warmup=0, iterations=n, timeout_s=1e9)
    run = simulate(model(), chip, work, heat_s=0.0, rng=random.Random(1))
    assert run is not None
    return statistics.median(run.latencies_ms[20:])


@pytest.mark.parametrize(("chip", "backend", "size", "low", "high"), [
    ("A17-Pro", "coreml", 5.09e6, 8, 12), ("A17-Pro", "mps", 5.09e6, 12, 18),
    ("A17-Pro", "xnnpack", 10.18e6, 25, 35), ("A17-Pro", "coreml-int8", 2.55e6, 6, 10),
    ("A15", "coreml", 5.09e6, 12, 18), ("A15", "mps", 5.09e6, 18, 25), ("A15", "xnnpack", 10.18e6, 35, 50),
    ("M2", "coreml", 5.09e6, 6, 10), ("M2", "mps", 5.09e6, 8, 14), ("M2", "xnnpack", 10.18e6, 20, 30),
])
def test_model_is_calibrated_on_the_seed_tables(chip: str, backend: str, size: float, low: float,
                                                high: float) -> None:
    assert low <= _median(chip, backend, int(size)) <= high


@pytest.mark.parametrize("chip", ["A17-Pro", "A15", "M2"])
def test_energy_maps_back_to_the_seed_power_labels(chip: str) -> None:
    """The reports turn mJ into the seed's labels; a simulated seed row must land on its own label."""
    from orchestrator.analysis.budgets import power_label

    m = model()
    for backend, entry in m.chips[chip].backends.items():
        size = int(m.backends[backend].reference_pte_mb * 1e6)
        work = Workload(backend, size, 224, 1, warmup=5, iterations=300, timeout_s=1e9)
        run = simulate(m, chip, work, heat_s=0.0, rng=random.Random(5), factor=1.03)
        assert run is not None
        assert power_label(run.energy_mj) == entry.power, (chip, backend, run.energy_mj)


def test_cost_scales_with_size_pixels_and_batch() -> None:
    base = _median("A17-Pro", "xnnpack", REF)
    assert _median("A17-Pro", "xnnpack", REF * 2) == pytest.approx(2 * base, rel=0.08)
    assert _median("A17-Pro", "xnnpack", REF, resolution=448) == pytest.approx(4 * base, rel=0.08)
    assert _median("A17-Pro", "xnnpack", REF, batch=4) == pytest.approx(4 * base, rel=0.08)


def test_noise_warmup_and_thermal_throttling() -> None:
    m = model()
    work = Workload("coreml", int(5.09e6), 224, 1, warmup=5, iterations=60_000, timeout_s=1e9)
    run = simulate(m, "A17-Pro", work, heat_s=0.0, rng=random.Random(3))
    assert run is not None
    steady = statistics.median(run.latencies_ms[:2000])
    assert run.warmup_ms[0] > 2.5 * steady  # the first predict compiles for the ANE
    assert statistics.pstdev(run.latencies_ms[:2000]) > 0  # noisy, not a constant
    # 60k iterations ~ 10 simulated minutes: the phone heats past serious and slows down
    assert m.thermal.state(run.heat_s) in ("serious", "critical")
    assert statistics.median(run.latencies_ms[-2000:]) > 1.3 * steady


def test_thermal_fault_and_unsupported_backend_in_results() -> None:
    dev = VirtualDevice(1, "iPhone14,5", "18.6.2", "t")
    dev.install(HARNESS_BUNDLE_ID, {})
    model_bytes = b"\x00" * 5_090_000
    doc, _ = benchmark(dev, make_job(model_bytes, backend="metal"), model_bytes)
    validate_result(doc)
    assert doc["status"] == "error" and doc["error"]["category"] == "unsupported_op"
    dev.faults.add("thermal", state="critical")
    hot, _ = benchmark(dev, make_job(model_bytes, backend="coreml"), model_bytes)
    dev.faults.clear()
    cool, _ = benchmark(dev, make_job(model_bytes, backend="coreml"), model_bytes)
    validate_result(hot)
    assert hot["thermal_before"] == "critical"
    assert statistics.median(hot["latencies_ms"]) > 1.6 * statistics.median(cool["latencies_ms"])


def test_model_errors_are_results_not_crashes() -> None:
    dev = VirtualDevice(1, "iPad14,3", "26.1", "t")
    model_bytes = b"\x01" * 1000
    missing, _ = benchmark(dev, make_job(model_bytes), None)
    wrong, _ = benchmark(dev, make_job(b"other bytes"), model_bytes)
    timeout, _ = benchmark(dev, make_job(model_bytes, iterations=100_000, timeout_s=1.0), model_bytes)
    for doc, category in ((missing, "model_load_failed"), (wrong, "model_load_failed"), (timeout, "timeout")):
        validate_result(doc)
        assert doc["error"]["category"] == category
    assert len(timeout["latencies_ms"]) < 100_000


def test_bad_job_gives_a_bad_job_result(one_device: FleetHandle, client_home: Path, tmp_path: Path) -> None:
    model_bytes = b"pte"
    job = {**make_job(model_bytes), "iterations": 0}  # below the schema minimum

    async def scenario():
        ld = await lockdown(one_device.udids[0], client_home)
        await stage_harness(ld, tmp_path, job, model_bytes)
        _, raw, _ = await run_harness(ld)
        await ld.close()
        return raw

    doc = json.loads(asyncio.run(scenario()))
    validate_result(doc)
    assert doc["error"]["category"] == "bad_job"


def test_time_compression_keeps_wall_clock_short(one_device: FleetHandle, client_home: Path,
                                                 tmp_path: Path) -> None:
    model_bytes = b"\x00" * 10_180_000  # reference XNNPACK program: ~30 ms per iteration on an A17 Pro
    job = make_job(model_bytes, backend="xnnpack", iterations=2000, warmup=10)  # ~60 simulated seconds

    async def scenario():
        ld = await lockdown(one_device.udids[0], client_home)
        await stage_harness(ld, tmp_path, job, model_bytes)
        t = time.monotonic()
        _, raw, _ = await run_harness(ld)
        took = time.monotonic() - t
        await ld.close()
        return raw, took

    raw, took = asyncio.run(scenario())
    doc = parse_result(raw)
    simulated_s = (sum(doc["latencies_ms"]) + sum(doc["warmup_latencies_ms"])) / 1000
    assert simulated_s > 40
    assert took < 5  # the fixture's compression is 1000x

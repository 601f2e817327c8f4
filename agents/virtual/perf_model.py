"""The virtual harness's performance model: loads ``perf_model.yaml`` and simulates one run.

Latency of iteration i = table median x cost x device factor x lognormal noise
x warm-up factor(i) x thermal multiplier(heat). Cost = (.pte size / the backend's
reference size) x (pixels / 224²) x batch. Heat grows with simulated busy time and
names the thermal state; at serious/critical the multiplier throttles the run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist

import numpy as np
from pydantic import Field, model_validator

from orchestrator.spec.types import StrictModel as _Strict
from orchestrator.spec.yamlpos import load_validated

MODEL_PATH = Path(__file__).with_name("perf_model.yaml")
THERMAL_STATES = ("nominal", "fair", "serious", "critical")




class Reference(_Strict):
    pte_mb: float = Field(gt=0)
    resolution: int = Field(gt=0)
    batch: int = Field(gt=0)


class BackendRef(_Strict):
    reference_pte_mb: float = Field(gt=0)


class ChipBackend(_Strict):
    latency_ms: tuple[float, float]
    memory_mb: float = Field(gt=0)
    power: str
    # True where the seed has no row and the figures are derived from another chip's ratio
    extrapolated: bool = False

    @model_validator(mode="after")
    def _range(self) -> ChipBackend:
        lo, hi = self.latency_ms
        if not 0 < lo <= hi:
            raise ValueError(f"latency_ms must be 0 < low <= high, got {list(self.latency_ms)}")
        return self


class Chip(_Strict):
    source: str
    heat_rate: float = Field(default=1.0, gt=0)
    backends: dict[str, ChipBackend]


class Noise(_Strict):
    range_coverage: float = Field(gt=0, lt=1)
    device_sigma: float = Field(ge=0)


class Warmup(_Strict):
    extra: float = Field(ge=0)
    decay_iterations: float = Field(gt=0)


class Memory(_Strict):
    weight_share: float = Field(ge=0, le=1)
    activation_share: float = Field(ge=0, le=1)
    sigma: float = Field(ge=0)


class Thermal(_Strict):
    fair_s: float = Field(gt=0)
    serious_s: float = Field(gt=0)
    critical_s: float = Field(gt=0)
    cooling_tau_s: float = Field(gt=0)
    latency_multiplier: dict[str, float]

    @model_validator(mode="after")
    def _order(self) -> Thermal:
        if not self.fair_s < self.serious_s < self.critical_s:
            raise ValueError("thresholds must rise: fair_s < serious_s < critical_s")
        missing = set(THERMAL_STATES) - set(self.latency_multiplier)
        if missing:
            raise ValueError(f"latency_multiplier lacks {sorted(missing)}")
        return self

    def state(self, heat_s: float) -> str:
        if heat_s >= self.critical_s:
            return "critical"
        if heat_s >= self.serious_s:
            return "serious"
        return "fair" if heat_s >= self.fair_s else "nominal"

    def cool(self, heat_s: float, idle_s: float) -> float:
        return heat_s * math.exp(-max(0.0, idle_s) / self.cooling_tau_s)


class FrameStages(_Strict):
    source: str
    preprocess_ms: dict[int, float] = Field(min_length=2)
    reference_chip: str
    postprocess_ms: float = Field(gt=0)
    sigma: float = Field(ge=0)

    @model_validator(mode="after")
    def _positive(self) -> FrameStages:
        if any(r <= 0 or ms <= 0 for r, ms in self.preprocess_ms.items()):
            raise ValueError("preprocess_ms: resolutions and times must be > 0")
        return self

    def preprocess_at(self, resolution: int) -> float:
        """The table interpolated linearly in pixels; beyond it, the nearest segment extended."""
        px = sorted((r * r, ms) for r, ms in self.preprocess_ms.items())
        xs, ys = [p for p, _ in px], [ms for _, ms in px]
        x = resolution * resolution
        if xs[0] <= x <= xs[-1]:
            return float(np.interp(x, xs, ys))
        (x0, y0), (x1, y1) = (px[0], px[1]) if x < xs[0] else (px[-2], px[-1])
        return max(0.05 * ys[0], y0 + (y1 - y0) * (x - x0) / (x1 - x0))


class PerfModel(_Strict):
    reference: Reference
    backends: dict[str, BackendRef]
    chips: dict[str, Chip]
    power_w: dict[str, float]
    noise: Noise
    warmup: dict[str, Warmup]
    load_ms: dict[str, tuple[float, float]]
    memory: Memory
    thermal: Thermal
    overhead_s: float = Field(ge=0)
    frame_pipeline: FrameStages

    @model_validator(mode="after")
    def _consistent(self) -> PerfModel:
        for chip_id, chip in self.chips.items():
            for name, entry in chip.backends.items():
                if name not in self.backends:
                    raise ValueError(f"chips.{chip_id}.backends.{name}: no reference size under backends")
                if entry.power not in self.power_w:
                    raise ValueError(f"chips.{chip_id}.backends.{name}: power {entry.power!r} not in power_w")
        for table in ("warmup", "load_ms"):
            if "default" not in getattr(self, table):
                raise ValueError(f"{table} needs a default entry")
        return self

    def entry(self, chip_id: str, backend: str) -> ChipBackend | None:
        chip = self.chips.get(chip_id)
        return None if chip is None else chip.backends.get(backend)

    def cpu_factor(self, chip_id: str) -> float:
        """How much slower the chip's CPU is than the frame table's reference chip (XNNPACK medians)."""
        mine, ref = self.entry(chip_id, "xnnpack"), self.entry(self.frame_pipeline.reference_chip, "xnnpack")
        if mine is None or ref is None:
            return 1.0
        return math.sqrt(mine.latency_ms[0] * mine.latency_ms[1]) / math.sqrt(ref.latency_ms[0] * ref.latency_ms[1])


@lru_cache(maxsize=1)
def model(path: Path = MODEL_PATH) -> PerfModel:
    return load_validated(PerfModel, path)


@dataclass(frozen=True)
class Workload:
    backend: str
    pte_bytes: int
    resolution: int  # pixels = resolution² (square inputs, as the seed assumes)
    batch: int
    warmup: int
    iterations: int
    timeout_s: float
    frame: bool = False  # an image input: each iteration preprocesses a camera frame and postprocesses


@dataclass
class Run:
    load_ms: float
    warmup_ms: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    preprocess_ms: list[float] = field(default_factory=list)  # per timed iteration, with Workload.frame
    postprocess_ms: list[float] = field(default_factory=list)
    peak_memory_bytes: int = 0
    energy_mj: float = 0.0
    heat_s: float = 0.0
    simulated_s: float = 0.0
    timed_out: bool = False


def device_factor(udid: str, m: PerfModel) -> float:
    """The fixed speed offset of one device (silicon lottery), the same on every run."""
    return math.exp(random.Random(udid).gauss(0.0, m.noise.device_sigma))


def worst(*states: str) -> str:
    return max(states, key=THERMAL_STATES.index)


def simulate(m: PerfModel, chip_id: str, work: Workload, heat_s: float, rng: random.Random,
             factor: float = 1.0, floor: str = "nominal") -> Run | None:
    """Simulate one run; None when the chip has no model for the backend (unsupported).

    ``floor`` is the least thermal state the device is in whatever its heat (a thermal fault).
    """
    entry = m.entry(chip_id, work.backend)
    if entry is None:
        return None
    ref = m.reference
    size_ratio = (work.pte_bytes / 1e6) / m.backends[work.backend].reference_pte_mb
    pixel_ratio = (work.resolution / ref.resolution) ** 2
    batch_ratio = work.batch / ref.batch
    cost = max(size_ratio, 0.01) * pixel_ratio * batch_ratio

    lo, hi = entry.latency_ms
    median = math.sqrt(lo * hi) * cost * factor
    z = NormalDist().inv_cdf((1 + m.noise.range_coverage) / 2)
    sigma = math.log(hi / lo) / (2 * z) if hi > lo else 0.0
    warm = m.warmup.get(work.backend, m.warmup["default"])
    heat_rate = m.chips[chip_id].heat_rate
    mult = m.thermal.latency_multiplier

    lo_ms, hi_ms = m.load_ms.get(work.backend, m.load_ms["default"])
    run = Run(load_ms=rng.uniform(lo_ms, hi_ms) * max(size_ratio, 0.1))
    total = work.warmup + work.iterations
    gen = np.random.default_rng(rng.getrandbits(64))
    noise = gen.lognormal(0.0, sigma, total)
    fp = m.frame_pipeline
    pre_ms = fp.preprocess_at(work.resolution) * work.batch * m.cpu_factor(chip_id) * factor
    stages = gen.lognormal(0.0, fp.sigma, (total, 2)) * [pre_ms, fp.postprocess_ms * work.batch * factor]
    elapsed = m.overhead_s + run.load_ms / 1000
    for i in range(total):
        ms = median * float(noise[i]) * (1 + warm.extra * math.exp(-i / warm.decay_iterations))
        ms *= mult[worst(m.thermal.state(heat_s), floor)]
        heat_s += ms / 1000 * heat_rate
        elapsed += ms / 1000
        (run.warmup_ms if i < work.warmup else run.latencies_ms).append(round(ms, 4))
        if work.frame:
            elapsed += float(stages[i].sum()) / 1000
            if i >= work.warmup:
                run.preprocess_ms.append(round(float(stages[i, 0]), 4))
                run.postprocess_ms.append(round(float(stages[i, 1]), 4))
        if elapsed > work.timeout_s:
            run.timed_out = True
            break
    run.heat_s, run.simulated_s = heat_s, elapsed
    mem = m.memory
    scale = 1 - mem.weight_share - mem.activation_share + mem.weight_share * size_ratio
    scale += mem.activation_share * pixel_ratio * batch_ratio
    run.peak_memory_bytes = int(entry.memory_mb * scale * math.exp(rng.gauss(0, mem.sigma)) * 1024 * 1024)
    steady = run.latencies_ms or run.warmup_ms
    run.energy_mj = m.power_w[entry.power] * (sum(steady) / len(steady)) if steady else 0.0
    return run

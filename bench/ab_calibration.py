"""Are A/B verdicts calibrated when launches vary? False alarms and detection, before and after.

Two models of a device whose *launches* differ (each launch has its own state: memory layout,
clocks, neighbours), so iterations inside a launch are not independent samples:

- ``host``: real launches of the host harness on this machine (MobileNetV3-Small @224,
  XNNPACK fp32, the demo's host cell; the real driver, the real ExecuTorch runtime, the shared
  2-core machine as it is). A synthetic launch picks one real launch at random and resamples
  its iterations, so it keeps that launch's level and spread: launch-to-launch variance as
  measured, without spending an hour of CPU per comparison. A slowdown scales the PR arm.
- ``virtual``: the virtual harness's performance model (``agents/virtual/perf_model.py``,
  A15 XNNPACK) with its per-launch factor ``launch_sigma``; a slowdown is a bigger program.

Each comparison runs a procedure on A/A pairs (the same program twice: every "slower" or
"faster" is a false alarm) and on true 5 % and 10 % slowdowns:

- ``before``: the old iteration-level test (two ABBA rounds, ``ab_rounds: 2``, 25 iterations
  per launch, every iteration pooled per arm into ``orchestrator.analysis.regression.compare_cells``:
  Mann-Whitney + bootstrap, as if iterations were independent);
- ``after``: what a PR cell does now with the default spec and run rule: the adaptive
  ``agents.ab.RoundPlan`` itself (4 rounds minimum, up to 16, the 300 s device budget,
  launch-level paired t over rounds with alpha/looks) on launches sized by the PR run rule
  (200 iterations and 10 s per cell, split over the minimum rounds).

The verify re-run a "slower" verdict triggers is not modelled: it would cut false alarms further.
Writes bench/results/ab_calibration.json.

    python bench/ab_calibration.py [--launches 40] [--comparisons 200]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents import ab  # noqa: E402
from orchestrator.analysis.regression import compare_cells  # noqa: E402
from orchestrator.spec.matrix import Parameters  # noqa: E402
from orchestrator.spec.run_rules import DEFAULTS, iterations  # noqa: E402

OUT = ROOT / "bench" / "results" / "ab_calibration.json"
SLOWDOWNS = (1.0, 1.05, 1.10)
OLD_ROUNDS, OLD_ITERATIONS = 2, 50  # the defaults before launch-level verdicts (11bb459^)
WARMUP = 5
# one synthetic launch: (arm slowdown, iterations at least, seconds at least) -> result document
Launcher = Callable[[float, int, float], dict[str, Any]]


def _doc(latencies: list[float], load_ms: float, warm: list[float]) -> dict[str, Any]:
    return {"status": "ok", "latencies_ms": latencies, "load_time_ms": load_ms, "warmup_latencies_ms": warm,
            "thermal_before": "unknown", "thermal_after": "unknown"}


def _resample(lat: np.ndarray, n: int, seconds: float, rng: np.random.Generator) -> list[float]:
    """Iterations drawn from one launch's own: at least ``n`` and at least ``seconds`` of them."""
    k = max(n, math.ceil(1.3 * seconds * 1000 / float(lat.mean())))
    while True:
        draw = rng.choice(lat, size=k)
        total = np.cumsum(draw)
        if not seconds or total[-1] >= seconds * 1000:
            stop = max(n, int(np.searchsorted(total, seconds * 1000)) + 1) if seconds else n
            return [float(x) for x in draw[:stop]]
        k *= 2


def host_launches(count: int, per_launch: int) -> list[dict[str, Any]]:
    """``count`` real launches of the host harness, each ``per_launch`` timed iterations."""
    from agents.drivers.host import HostDriver
    from orchestrator.export.artifacts import ArtifactStore
    from orchestrator.export.pipeline import ExportRequest, export_artifact

    art, _ = export_artifact(ExportRequest("mobilenet_v3_small", "zoo:mobilenet_v3_small", "xnnpack", 224),
                             ArtifactStore())
    driver = HostDriver(slot="calib", workdir=Path("/tmp/benchfarm-ab-calibration"))
    docs = []
    try:
        [dev] = driver.discover()
        for i in range(count):
            job = {"schema_version": 1, "job_id": f"calib-{i}", "attempt_id": f"calib-{i}", "attempt_token": i,
                   "model_file": "m.pte", "model_sha256": "0" * 64, "backend": "xnnpack",
                   "compute_units": "all", "input_shape": [1, 3, 224, 224], "warmup": WARMUP,
                   "iterations": per_launch, "timeout_s": 300, "golden_input": {"kind": "seeded-uniform", "seed": 1}}
            driver.prepare(dev, job, art.path)
            doc = json.loads(driver.run(dev, job))
            driver.cleanup(dev, job)
            if doc.get("status") == "ok":
                docs.append(doc)
    finally:
        driver.close()
    return docs


def host_model(real: list[dict[str, Any]], rng: np.random.Generator) -> Launcher:
    def launch(slowdown: float, n: int, seconds: float) -> dict[str, Any]:
        src = real[int(rng.integers(len(real)))]
        out = _resample(np.asarray(src["latencies_ms"]) * slowdown, n, seconds, rng)
        return _doc(out, float(src["load_time_ms"]), [x * slowdown for x in src["warmup_latencies_ms"]])
    return launch


def virtual_model(seed: int, launch_sigma: float) -> tuple[Launcher, float]:
    from agents.virtual.perf_model import Workload, model, simulate

    base = model()
    m = base if base.noise.launch_sigma else base.model_copy(
        update={"noise": base.noise.model_copy(update={"launch_sigma": launch_sigma})})
    rng = random.Random(seed)
    pte = int(m.backends["xnnpack"].reference_pte_mb * 1e6)

    def launch(slowdown: float, n: int, seconds: float) -> dict[str, Any]:
        work = Workload("xnnpack", int(pte * slowdown), 224, 1, WARMUP, n, 3600.0, seconds)
        run = simulate(m, "A15", work, 0.0, rng)
        assert run is not None
        return _doc(run.latencies_ms, run.load_ms, run.warmup_ms)
    return launch, m.noise.launch_sigma


def before(launch: Launcher, slowdown: float) -> dict[str, Any]:
    """The old verdict: ABBA over 2 rounds, iterations pooled per arm, iteration-level test."""
    per = math.ceil(OLD_ITERATIONS / OLD_ROUNDS)
    pooled: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(OLD_ROUNDS):
        for arm in ("AB" if r % 2 == 0 else "BA"):
            pooled[arm] += launch(slowdown if arm == "A" else 1.0, per, 0.0)["latencies_ms"]
    v = compare_cells(pooled["B"], pooled["A"])
    return {"verdict": v.verdict, "rounds": OLD_ROUNDS}


def after(launch: Launcher, slowdown: float) -> dict[str, Any]:
    """Today's PR cell: the agent's own adaptive plan on launches sized by the PR run rule."""
    p, rule = Parameters(), DEFAULTS["pr"]
    n = iterations(p.iterations, rule)
    payload = {"artifact_key": "a", "ab": {"rounds": p.ab_rounds, "max_rounds": p.ab_max_rounds,
                                           "budget_s": p.ab_budget_s, "min_effect": p.ab_min_effect,
                                           "baseline": {"artifact_key": "b", "model_file": "b.pte",
                                                        "model_sha256": "0" * 64}}}
    job = {"iterations": n, "min_duration_s": rule.min_duration_s}
    plan = ab.RoundPlan(payload, job)
    for arm_run in plan:
        j = arm_run.job
        plan.record(arm_run.arm, launch(slowdown if arm_run.arm == "A" else 1.0, int(j["iterations"]),
                                        float(j.get("min_duration_s") or 0.0)))
    d = plan.decision
    s = plan.summary()
    return {"verdict": d.verdict if d else "insufficient data", "rounds": s["rounds_done"],
            "stop": s["stop_reason"], "device_s": s["device_s"]}


def scenario(proc: Callable[[Launcher, float], dict[str, Any]], launch: Launcher, slowdown: float,
             comparisons: int) -> dict[str, Any]:
    started = time.perf_counter()
    runs = [proc(launch, slowdown) for _ in range(comparisons)]
    verdicts = Counter(r["verdict"] for r in runs)
    rounds = [r["rounds"] for r in runs]
    alarm = verdicts["slower"] + verdicts["faster"]
    out: dict[str, Any] = {
        "slowdown": slowdown, "comparisons": comparisons,
        "verdicts": {k: v / comparisons for k, v in sorted(verdicts.items())},
        "rounds": {"mean": statistics.fmean(rounds), "median": statistics.median(rounds),
                   "p90": float(np.percentile(rounds, 90)), "max": max(rounds)},
        "s_per_comparison": (time.perf_counter() - started) / comparisons,
    }
    if slowdown == 1.0:
        out["false_alarm_rate"] = alarm / comparisons
    else:
        out["detection_rate"] = verdicts["slower"] / comparisons
        for verdict in ("slower", "within noise", "unknown"):
            got = [r["rounds"] for r in runs if r["verdict"] == verdict]
            if got:
                out.setdefault("rounds_by_verdict", {})[verdict] = statistics.fmean(got)
    if runs and "stop" in runs[0]:
        out["stop_reasons"] = dict(Counter(r["stop"] for r in runs))
        out["device_s_mean"] = statistics.fmean(r["device_s"] for r in runs)
    return out


def launch_spread(docs: list[dict[str, Any]]) -> dict[str, Any]:
    meds = np.asarray([statistics.median(d["latencies_ms"]) for d in docs])
    within = [statistics.pstdev(d["latencies_ms"]) / statistics.fmean(d["latencies_ms"]) for d in docs]
    return {"launches": len(docs), "launch_median_cv": float(meds.std(ddof=1) / meds.mean()),
            "median_of_launch_medians_ms": float(np.median(meds)), "within_launch_cv_median": statistics.median(within)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--launches", type=int, default=40, help="real host launches to calibrate the host model")
    ap.add_argument("--per-launch", type=int, default=60, help="timed iterations per real launch")
    ap.add_argument("--comparisons", type=int, default=200)
    ap.add_argument("--launch-sigma", type=float, default=0.02,
                    help="the virtual model's launch spread when perf_model.yaml sets none")
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    real = host_launches(args.launches, args.per_launch)
    measured_s = time.perf_counter() - t0
    host = host_model(real, rng)
    virtual, sigma = virtual_model(args.seed, args.launch_sigma)
    models: dict[str, Any] = {
        "host": {"launcher": host, "about": {"source": "real host-harness launches on this machine, resampled",
                                             "measured_s": round(measured_s, 1), **launch_spread(real)}},
        "virtual": {"launcher": virtual, "about": {"source": "simulated: virtual perf model, A15 XNNPACK",
                                                   "launch_sigma": sigma}},
    }
    result: dict[str, Any] = {"bench": "ab_calibration", "pr_rule": DEFAULTS["pr"].model_dump(),
                              "pr_ab_defaults": {k: getattr(Parameters(), k) for k in
                                                 ("iterations", "ab_rounds", "ab_max_rounds", "ab_budget_s",
                                                  "ab_min_effect")},
                              "goals": {"false_alarm_rate_max": 0.01, "detection_10pct_min": 0.95}, "models": {}}
    for name, spec in models.items():
        out: dict[str, Any] = {"about": spec["about"]}
        for label, proc in (("before", before), ("after", after)):
            out[label] = [scenario(proc, spec["launcher"], s, args.comparisons) for s in SLOWDOWNS]
            print(name, label, json.dumps([(x["slowdown"], x.get("false_alarm_rate", x.get("detection_rate")),
                                            x["rounds"]["mean"]) for x in out[label]]), flush=True)
        result["models"][name] = out
    result["total_s"] = round(time.perf_counter() - t0, 1)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

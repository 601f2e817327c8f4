"""Why PR cells run interleaved A/B: an A/A experiment under drift, on this CPU.

The same program (MobileNetV3-Small @224, XNNPACK fp32) plays both "baseline" and "PR", so
every verdict other than "within noise" is a false alarm. Each trial measures:
  - *stored baseline*: the baseline measured on a quiet machine, the PR later while other
    work loads the CPU (what comparing with last night's numbers does when the device, its
    temperature or its neighbours changed in between);
  - *interleaved A/B*: both arms alternating in blocks in the agent's own order (ABBA for
    two rounds), all while that load runs (what ``agents/ab.py`` does inside one lease).
Both go through benchfarm's verdict (``orchestrator.analysis.regression.compare_cells``).
The load is ``LOAD_PROCS`` busy-looping processes. Writes bench/results/ab_drift.json.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ITER, WARM, ROUNDS, TRIALS, LOAD_PROCS = 40, 10, 2, 5, 2


def _spin(stop: mp.Event) -> None:  # type: ignore[valid-type]
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


class Load:
    def __enter__(self) -> Load:
        self.stop = mp.Event()
        self.procs = [mp.Process(target=_spin, args=(self.stop,), daemon=True) for _ in range(LOAD_PROCS)]
        for p in self.procs:
            p.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(5)


def main() -> dict:
    import torch
    from executorch.runtime import Runtime

    from agents import ab
    from agents.harness.contract import golden_input
    from orchestrator.analysis.regression import compare_cells
    from orchestrator.export.pipeline import ExportRequest, export_artifact

    order = "".join(r.arm for r in ab.plan_arms({"artifact_key": "a", "ab": {"rounds": ROUNDS, "baseline": {
        "artifact_key": "b", "model_file": "b.pte", "model_sha256": ""}}}, {"iterations": ITER}))
    art, _ = export_artifact(ExportRequest("mobilenet_v3_small", "zoo:mobilenet_v3_small", "xnnpack", 224))
    method = Runtime.get().load_program(str(art.path)).load_method("forward")
    x = torch.from_numpy(golden_input([1, 3, 224, 224], 1234))

    def measure(n: int) -> list[float]:
        for _ in range(WARM):
            method.execute([x])
        out = []
        for _ in range(n):
            t = time.perf_counter()
            method.execute([x])
            out.append((time.perf_counter() - t) * 1000)
        return out

    trials = []
    for trial in range(TRIALS):
        quiet_baseline = measure(ITER)
        with Load():
            pr_later = measure(ITER)
            a, b = [], []
            for arm in order:  # the agent's own order (agents.ab.plan_arms), ITER / ROUNDS iterations a block
                (a if arm == "A" else b).extend(measure(ITER // ROUNDS))
        stored = compare_cells(quiet_baseline, pr_later)
        paired = compare_cells(b, a)
        trials.append({"trial": trial, "stored_baseline": {"verdict": stored.verdict, "change_pct": stored.change_pct,
                                                            "baseline_median_ms": statistics.median(quiet_baseline),
                                                            "pr_median_ms": statistics.median(pr_later)},
                       "interleaved_ab": {"verdict": paired.verdict, "change_pct": paired.change_pct,
                                          "baseline_median_ms": statistics.median(b),
                                          "pr_median_ms": statistics.median(a)}})
        print(f"trial {trial}: stored baseline -> {stored.verdict} ({stored.change_pct:+.1f}%), "
              f"interleaved A/B -> {paired.verdict} ({paired.change_pct:+.1f}%)", flush=True)
    false_alarms = {k: sum(t[k]["verdict"] != "within noise" for t in trials)
                    for k in ("stored_baseline", "interleaved_ab")}
    result = {"model": "mobilenet_v3_small@224 xnnpack fp32", "same_program_both_arms": True,
              "iterations_per_arm": ITER, "ab_rounds": ROUNDS, "order": order, "load_processes": LOAD_PROCS,
              "trials": trials, "false_alarms": false_alarms, "of": TRIALS}
    out = ROOT / "bench" / "results" / "ab_drift.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"false alarms over {TRIALS} A/A trials: {false_alarms} -> {out}")
    return result


if __name__ == "__main__":
    main()

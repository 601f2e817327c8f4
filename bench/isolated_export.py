"""What exporter isolation costs per ``import:`` export: the same registered-package model lowered
in this process (``pipeline.lower_torch_source``, as before isolation) and in a confined child of
the zygote (``isolated.lower``), alternating, REPEATS each; plus the zygote's start (the first
isolated export of a process) and the fixed round trip (a factory that raises at once).
Writes bench/results/isolated_export.json.
Usage: python bench/isolated_export.py [REPEATS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bf_bench_isolation"
CODE = '''
from torch import nn

from orchestrator.export import zoo


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.conv(x).relu().mean((2, 3)))


def tiny():
    return Tiny()


def mobilenet_v3_small():
    return zoo.ZOO["mobilenet_v3_small"].factory()  # build_model seeds it (zoo.build would re-take the lock)


def fails():
    raise ValueError("at once")
'''
MODELS = {"tiny": 64, "mobilenet_v3_small": 224}


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(repeats: int = 3) -> dict:
    code = Path(tempfile.mkdtemp(prefix="bf-bench-isolation-"))
    (code / f"{PACKAGE}.py").write_text(CODE)
    sys.path.insert(0, str(code))
    os.environ["BENCHFARM_MODEL_PACKAGES"] = PACKAGE
    from orchestrator.export import isolated
    from orchestrator.export.pipeline import lower_torch_source
    from orchestrator.export.registry import registry
    from orchestrator.export.request import ExportRequest

    backend = registry().resolve("xnnpack")

    def req(factory: str) -> ExportRequest:
        return ExportRequest(factory, f"import:{PACKAGE}:{factory}", "xnnpack", MODELS.get(factory, 32))

    def fail_isolated() -> None:
        try:
            isolated.lower(req("fails"))
        except isolated.IsolatedExportFailed:
            pass

    first_s = _timed(fail_isolated)  # starts the zygote: torch + executorch imports, then a fork
    lower_torch_source(req("tiny"), backend)  # this process's own first lowering (lazy set-up) too
    round_trip = [_timed(fail_isolated) for _ in range(5)]
    rows = {}
    for name in MODELS:
        runs: dict[str, list[float]] = {"in_process": [], "isolated": []}
        for _ in range(repeats):
            runs["in_process"].append(_timed(lambda n=name: lower_torch_source(req(n), backend)))
            runs["isolated"].append(_timed(lambda n=name: isolated.lower(req(n))))
        med = {k: statistics.median(v) for k, v in runs.items()}
        rows[name] = {"in_process_s": [round(x, 2) for x in runs["in_process"]],
                      "isolated_s": [round(x, 2) for x in runs["isolated"]],
                      "added_s_median": round(med["isolated"] - med["in_process"], 2),
                      "added_ratio": round(med["isolated"] / med["in_process"], 2)}
    out = {"bench": "isolated_export", "backend": "xnnpack", "repeats": repeats,
           "zygote_start_and_first_round_trip_s": round(first_s, 2),
           "round_trip_s": [round(x, 3) for x in round_trip],
           "round_trip_s_median": round(statistics.median(round_trip), 3),
           "models": rows, "loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
           "note": "round trip = fork of the warm zygote, a child whose factory raises, its answer and "
                   "reaping; added_s = isolated - in-process lowering of the same model (a fresh child pays "
                   "the lowering's lazy first-call set-up that a long-lived process pays once); shared "
                   "2-core machine: absolute times are noisy"}
    (ROOT / "bench" / "results" / "isolated_export.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))

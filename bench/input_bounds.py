"""What a hostile spec and a hostile result document cost to refuse: wall time and peak RSS of a
fresh interpreter validating the issue-21 inputs (a 52,428,800-cell spec of 4.7 KB; a result with
10^6 and 2.7 M negative latencies). Writes bench/results/input_bounds.json.

    python bench/input_bounds.py

Before this work (issue 21's own measurements on this machine kind): the spec ran 64 s to a
MemoryError at 3.5 GB; 10^6 latencies took 25 s and 3.5 GB, 2.7 M raised SystemError.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.test_spec_bounds import spec_text  # noqa: E402

MEASURE = ("import json, resource, sys, time\n{setup}\nt = time.perf_counter()\ntry:\n    {call}\n"
           "    outcome = 'accepted'\nexcept ValueError as e:\n    outcome = str(e).splitlines()[0][:160]\n"
           "print(json.dumps({{'seconds': round(time.perf_counter() - t, 4), 'outcome': outcome,\n"
           "    'max_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}}))\n")


def run(setup: str, call: str, stdin: str) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE.format(setup=setup, call=call)], input=stdin,
                         capture_output=True, text=True, cwd=ROOT, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    spec = spec_text(64, ["xnnpack", "xnnpack-int8"], ["host-cpu"], 64, 64, 100).replace(
        "name: m", "name: model-of-the-big-matrix-")
    doc = (ROOT / "agents/harness/contract/fixtures/result/valid/host_ok.json").read_text()
    results = {"spec_52m_cells": {"bytes": len(spec), **run(
        "from orchestrator.spec.matrix import loads_spec\ntext = sys.stdin.read()",
        "loads_spec(text, 'big.yaml')", spec)},
        "before_from_issue_21": {"spec_52m_cells": "MemoryError after 64 s at 3.5 GB",
                                 "result_1e6_negative": "25 s, 3.5 GB", "result_2_7e6_negative": "SystemError"}}
    for n in (10**5, 10**6, 2_700_000):
        results[f"result_{n}_negative_latencies"] = run(
            f"from agents.harness.contract import validate_result\ndoc = json.loads(sys.stdin.read())\n"
            f"doc['latencies_ms'] = [-1.0] * {n}", "validate_result(doc)", doc)
    out = ROOT / "bench/results/input_bounds.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

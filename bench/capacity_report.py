"""How long the capacity report takes to build from a large history (pure part, no DB).

Writes bench/results/capacity_report.json: seconds to build the report from N simulated
M/M/c jobs (3 events each), and how close the measured waits are to Erlang C.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.capacity import queueing as qm  # noqa: E402
from orchestrator.capacity.report import Live, Targets, build_report  # noqa: E402
from tests.capacity.history import mmc_history  # noqa: E402

OUT = Path(__file__).with_name("results") / "capacity_report.json"


def main() -> None:
    rows = []
    for n_jobs, devices, lam, svc in ((10_000, 2, 1 / 60, 60.0), (100_000, 8, 1 / 10, 60.0)):
        events, jobs, end = mmc_history(n_jobs, devices, lam, svc, seed=11, prepare_share=0.1)
        t = time.perf_counter()
        rep = build_report(events, jobs, Live(source="bench"), events[0].at, end, Targets(pr_wait_p95_s=60))
        took = time.perf_counter() - t
        cls = rep["classes"]["A17-Pro"]
        rows.append({"jobs": n_jobs, "events": len(events), "devices": devices, "build_s": round(took, 3),
                     "occupancy": round(cls["occupancy"], 4), "analytic_rho": lam * svc / devices,
                     "wait_p95_s": round(cls["waits"]["pr"]["p95_s"], 2),
                     "erlang_c_p95_s": round(qm.wait_quantile(devices, lam, svc, 0.95), 2),
                     "devices_needed_pr": cls["devices_needed"]["pr_wait"],
                     "analytic_devices_needed_pr": qm.devices_for_wait(lam, svc, 60)})
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"simulated_history": True, "runs": rows}, indent=2) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()

"""The coordinator, the API, the scheduler, capacity and reports import and run without the ML
stack: a coordinator image installs no torch. The subprocess makes importing torch, executorch,
torchao, torchvision and coremltools fail, then submits a zoo model's run, answers as the
exporter would, records a result and builds the report — all real code, real Redis and SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

NO_ML = """
import sys
class _NoML:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "executorch", "torchao", "torchvision", "coremltools"):
            raise ImportError(f"{name}: not installed in a coordinator image")
sys.meta_path.insert(0, _NoML())
"""

SCRIPT = NO_ML + textwrap.dedent("""
    import json
    import orchestrator.worker, orchestrator.tasks, orchestrator.scheduling.beat, orchestrator.capacity.report
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from device_inventory.fleet import Fleet
    from orchestrator import config
    from orchestrator.api.app import create_app
    from orchestrator.coordinator.exports import export_done
    from orchestrator.coordinator.record import attempt_started, record_attempt
    from orchestrator.coordinator.submit import submit
    from orchestrator.reports.build import build_report
    from orchestrator.spec.matrix import loads_spec
    from orchestrator.store.db import session
    from orchestrator.store.models import Attempt, Job

    SPEC = ("name: no-torch\\nmodels: [{name: tiny, source: 'zoo:tiny_cnn'}]\\nbackends: [xnnpack]\\n"
            "devices: [A15]\\nparameters: {input_resolution: [32], iterations: 3, warmup: 1}\\n")
    fleet = Fleet.from_url(config.redis_url())
    run_id, outbox = submit(loads_spec(SPEC), SPEC, fleet)
    with session() as s:
        [job] = s.scalars(select(Job).where(Job.run_id == run_id)).all()
        request, state = job.request_key, job.state
    export_done(request, "ok", {"artifact_key": "c" * 64, "file_sha256": "d" * 64, "size_bytes": 1}, fleet)
    with session() as s:
        attempt = s.scalars(select(Attempt).where(Attempt.job_id == job.id)).one()
    attempt_started({"attempt_id": attempt.id, "device_id": "d1", "lease_token": 1})
    doc = {"schema_version": 1, "job_id": job.id, "attempt_id": attempt.id, "attempt_token": 1, "simulated": True,
           "producer": {"name": "virtual-harness", "version": "1"},
           "device": {"model": "iPhone14,5", "os": "iOS", "os_version": "16.6"}, "backend": "xnnpack",
           "status": "ok", "load_time_ms": 5.0, "latencies_ms": [10.0, 11.0, 12.0], "peak_memory_bytes": 10**7,
           "started_at": "2026-11-25T10:00:00+00:00", "finished_at": "2026-11-25T10:00:01+00:00"}
    outcome, _ = record_attempt({"attempt_id": attempt.id, "job_id": job.id, "outcome": "ok", "device_id": "d1",
                                 "lease_token": 1, "result": doc}, fleet)
    with session() as s:
        report = build_report(s, run_id)
    api = TestClient(create_app(fleet)).get(f"/runs/{run_id}").json()
    print(json.dumps({"state_at_submit": state, "accepted": outcome.accepted, "api_status": api["status"],
                      "report": type(report).__name__, "torch": "torch" in sys.modules}))
""")


def test_coordinator_api_and_reports_run_without_torch(bf_env) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=bf_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"state_at_submit": "exporting", "accepted": True, "api_status": "succeeded",
                   "report": "Report", "torch": False}

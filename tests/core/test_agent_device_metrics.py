"""The device's own figures beside the harness's, through a real agent, worker and store: virtual
iPhones on iOS 16 (DVT over lockdown) and iOS 26 (DVT over the CoreDeviceProxy tunnel + RSD).

The agent samples the harness pid with pymobiledevice3's Sysmontap and EnergyMonitor while it
runs; the stored result carries a ``device_metrics`` block (sources, sample counts, footprint,
CPU, energy; simulated), the matrix shows each figure's source, and a device whose instruments
refuse the channels still gives a result, with the reason its figures are missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents.virtual.testing import running_fleet
from device_inventory.fleet import Fleet
from orchestrator.api.app import create_app
from orchestrator.coordinator.submit import submit as submit_run
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Job, Result, Run
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(300)
# min_run_s: a compressed-time harness still runs long enough for a few 50 ms samples
FLEET = """\
version: 1
seed: 5
defaults: {tls: false, time_compression: 200, min_run_s: 1.0}
hosts:
  - name: vh
    devices:
      - {product_type: "iPhone14,5", ios: "16.6"}
      - {product_type: "iPhone16,1", ios: "26.1"}
"""
SPEC = """\
name: device-metrics
models: [tiny_cnn]
backends: [xnnpack]
devices: [A15, A17-Pro]
parameters: {input_resolution: [64], warmup: 1, iterations: 20, repeats: 1, timeout_s: 20}
"""


def _run(fleet: Fleet) -> str:
    run_id, outbox = submit_run(loads_spec(SPEC), SPEC, fleet)
    outbox.send()
    wait_until(lambda: _finalized(run_id), 240, "the run to finish")
    return run_id


def _finalized(run_id: str) -> bool:
    with session() as s:
        return bool(s.get(Run, run_id).finalized)


def _results(run_id: str) -> dict[str, dict]:
    """os_version -> stored result document."""
    with session() as s:
        rows = s.scalars(select(Result).join(Job).where(Job.run_id == run_id)).all()
        return {r.os_version: r.document for r in rows}


def _matrix(env: dict[str, str], run_id: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "matrix", run_id, "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_results_carry_device_metrics_with_their_sources(bf_env, procs, tmp_path):
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    with running_fleet(path) as vfleet:
        procs.env = dict(bf_env, HOME=str(Path(bf_env["BENCHFARM_HOME"])))
        procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "3")
        procs.start("agent", "agent", "--driver", "ios", "--usbmux", vfleet.usbmux_address, "--name", "ios",
                    "--lease-ttl", "10")
        wait_until(lambda: len([d for d in fleet.devices() if d.get("state") == "available"]) == 2, 90,
                   "both virtual iPhones to register")

        run_id = _run(fleet)
        docs = _results(run_id)
        assert set(docs) == {"16.6", "26.1"}, procs.log("agent")[-3000:]
        for os_version, doc in docs.items():
            dm = doc["device_metrics"]
            assert dm["simulated"] is True and dm["missing"] == [], (os_version, dm)
            mem, energy = dm["memory"], dm["energy"]
            assert mem["source"] == "dvt.sysmontap" and mem["samples"] >= 2
            assert energy["source"] == "dvt.energy" and energy["samples"] >= 2
            # the harness's own figure stays, beside the device's view of the same process
            assert doc["peak_memory_bytes"] > 0
            assert mem["peak_footprint_bytes"] == pytest.approx(doc["peak_memory_bytes"], rel=0.05)
            assert mem["mean_cpu_pct"] > 100  # XNNPACK keeps several cores busy
            assert energy["energy_mj_per_inference"] == pytest.approx(doc["energy_mj_per_inference"], rel=0.1)
            assert dm["battery"]["charging"] is True and dm["battery"]["power_mw"] is None

        tables = _matrix(procs.env, run_id)
        assert {t["title"].split(" (")[0] for t in tables} >= {"iPhone 13", "iPhone 15 Pro"}
        for t in tables:
            [row] = t["rows"]
            assert row["values"]["Device memory"].endswith("MB") and row["values"]["Power"] != "n/a"
            assert row["sources"] == ""  # every figure from the device's instruments: the table's note says so
        with TestClient(create_app()) as api:  # the API names them too
            jobs = api.get(f"/runs/{run_id}").json()["jobs"]
            assert {j["result"]["device_metrics"]["memory"]["source"] for j in jobs} == {"dvt.sysmontap"}
            cells = api.get(f"/runs/{run_id}/matrix").json()["cells"]
            assert all(c["energy_sources"] == ["dvt.energy"] and c["device_peak_memory_bytes"] for c in cells)
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "matrix", run_id, "--wide"],
                             env=procs.env, capture_output=True, text=True, timeout=60)
        assert "dvt.energy" in out.stdout and "sysmontap" in out.stdout, out.stdout

        # instruments that refuse sysmontap and the energy gauge: the benchmark still counts,
        # the device's figures are missing with the reason, and Power falls back to the harness
        a15 = next(u for u in vfleet.udids if vfleet.device(u)["product_version"] == "16.6")
        vfleet.inject_fault(a15, "instruments_refused")
        run_id = _run(fleet)
        docs = _results(run_id)
        assert set(docs) == {"16.6", "26.1"}
        dm = docs["16.6"]["device_metrics"]
        assert dm["memory"] is None and dm["energy"] is None
        assert {m["source"] for m in dm["missing"]} == {"dvt.sysmontap", "dvt.energy"}
        assert all("Unable to find a service" in m["reason"] for m in dm["missing"]), dm["missing"]
        assert docs["26.1"]["device_metrics"]["missing"] == []
        rows = {t["title"].split(" (")[0]: t["rows"][0] for t in _matrix(procs.env, run_id)}
        refused = rows["iPhone 13"]
        assert refused["values"]["Device memory"] == "—" and refused["values"]["Power"] != "n/a"
        assert "power: harness" in refused["sources"] and "device figures missing" in refused["sources"]
        assert rows["iPhone 15 Pro"]["sources"] == ""

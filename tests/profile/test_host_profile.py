"""The host driver's profiling pass on real programs with the real ExecuTorch event tracer.
(A pass that aborts the runtime is tested through the real agent: test_profile_agent.py.)"""

from __future__ import annotations

import pytest

from agents.drivers.host import HostDriver
from agents.harness.contract import parse_result
from orchestrator.export.artifacts import ArtifactStore
from orchestrator.export.pipeline import ExportRequest, export_artifact

RES = 64


@pytest.fixture(scope="module")
def tiny(shared_artifacts):
    store = ArtifactStore(shared_artifacts)
    art, _ = export_artifact(ExportRequest("tiny_cnn", "zoo:tiny_cnn", "xnnpack", RES), store)
    return store, art


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = HostDriver(slot="p", workdir=tmp_path_factory.mktemp("host"))
    yield d
    d.close()


def job(attempt: str, **profile):
    return {"schema_version": 1, "job_id": "j1", "attempt_id": attempt, "attempt_token": 3, "model_file": "m.pte",
            "model_sha256": "0" * 64, "backend": "xnnpack", "compute_units": "all", "input_shape": [1, 3, RES, RES],
            "warmup": 2, "iterations": 8, "timeout_s": 60, "golden_input": {"kind": "seeded-uniform", "seed": 1234},
            "profile": {"iterations": 5, "warmup": 1, **profile}}


def run(driver, art, j):
    [dev] = driver.discover()
    driver.prepare(dev, j, art.path)
    try:
        return parse_result(driver.run(dev, j))
    finally:
        driver.cleanup(dev, j)


def test_export_stores_an_etrecord_beside_the_program(tiny):
    store, art = tiny
    assert art.meta["etrecord"]["size_bytes"] > 0
    path = store.etrecord(art.key)
    assert path is not None and path.stat().st_size == art.meta["etrecord"]["size_bytes"]


def test_profiling_pass_reports_operators_apart_from_the_timing(driver, tiny):
    _store, art = tiny
    doc = run(driver, art, job("p1"))
    assert doc["status"] == "ok" and len(doc["latencies_ms"]) == 8  # the timed series is untouched
    prof = doc["profile"]
    assert prof["status"] == "ok" and prof["source"] == "etdump" and prof["simulated"] is False
    assert prof["iterations"] == 5 and prof["etrecord"] is True
    ops = prof["operators"]
    assert ops and all(op["mean_ms"] >= 0 for op in ops)
    delegated = [op for op in ops if op["delegated"]]
    assert delegated and {op["backend"] for op in delegated} == {"XnnpackBackend"}
    assert any(op["kind"].startswith("Convolution") for op in delegated)
    # operators run inside Method::execute: their times add up to at most the method's
    total = sum(op["mean_ms"] for op in ops)
    assert 0 < total <= prof["method_ms"]["mean"] * 1.001

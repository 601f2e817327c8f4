"""The host driver against real .pte programs, run by the real ExecuTorch runtime."""

import json

import numpy as np
import pytest
import torch

from agents.drivers.host import HostDriver
from agents.harness.contract import golden_input, parse_result
from agents.harness.frame import stage_times
from agents.protocols import DriverError
from orchestrator.export import zoo
from orchestrator.export.artifacts import ArtifactStore
from orchestrator.export.pipeline import ExportRequest, export_artifact

RES = 64


@pytest.fixture(scope="module")
def tiny_pte(shared_artifacts):
    art, _ = export_artifact(ExportRequest("tiny_cnn", "zoo:tiny_cnn", "xnnpack", RES), ArtifactStore(shared_artifacts))
    return art


def job(attempt="a1", **over):
    doc = {"schema_version": 1, "job_id": "j1", "attempt_id": attempt, "attempt_token": 7, "model_file": "m.pte",
           "model_sha256": "0" * 64, "backend": "xnnpack", "compute_units": "all", "input_shape": [1, 3, RES, RES],
           "warmup": 2, "iterations": 10, "timeout_s": 60, "golden_input": {"kind": "seeded-uniform", "seed": 1234}}
    doc.update(over)
    return doc


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = HostDriver(slot="t", workdir=tmp_path_factory.mktemp("host"))
    yield d
    d.close()


def test_discover_and_health(driver):
    [dev] = driver.discover()
    assert dev.device_class == "host-cpu" and dev.id.endswith(":t") and not dev.simulated
    assert driver.health(dev).ok


def test_runs_a_real_program_and_matches_eager_output(driver, tiny_pte):
    [dev] = driver.discover()
    j = job()
    driver.prepare(dev, j, tiny_pte.path)
    doc = parse_result(driver.run(dev, j))
    driver.cleanup(dev, j)
    assert doc["status"] == "ok" and doc["simulated"] is False
    assert len(doc["latencies_ms"]) == 10 and len(doc["warmup_latencies_ms"]) == 2
    assert all(x > 0 for x in doc["latencies_ms"])
    # what the program adds over the idle harness: more than its weights, far less than Python + torch
    assert 1024 * 1024 < doc["peak_memory_bytes"] < 300 * 1024 * 1024
    assert (doc["job_id"], doc["attempt_token"]) == ("j1", 7)
    # numerics: the program's output on the golden input agrees with eager torch
    eager = zoo.build("tiny_cnn")(torch.from_numpy(golden_input([1, 3, RES, RES], 1234))).detach().numpy()
    assert doc["output"]["top1"] == int(eager.argmax())
    assert np.allclose(doc["output"]["head"], eager.reshape(-1)[:16], atol=1e-3)
    # the seed's frame: a 1080p BGRA frame preprocessed into the input and the output
    # postprocessed on every timed iteration, each stage timed and summarised
    assert len(doc["preprocess_ms"]) == len(doc["postprocess_ms"]) == 10
    fp = doc["frame_pipeline"]
    assert (fp["simulated"], fp["source"], fp["iterations"]) == (False, "measured", 10)
    assert fp["frame"] == {"width": 1920, "height": 1080, "format": "BGRA8"}
    assert fp["preprocess_ms"] == stage_times(doc["preprocess_ms"])
    assert fp["inference_ms"] == stage_times(doc["latencies_ms"])
    totals = [a + b + c for a, b, c in zip(doc["preprocess_ms"], doc["latencies_ms"], doc["postprocess_ms"],
                                                  strict=True)]
    assert fp["total_ms"] == stage_times(totals) and fp["total_ms"]["p50"] > fp["inference_ms"]["p50"]


def test_a_corrupt_program_is_a_model_error_not_a_crash(driver, tmp_path):
    [dev] = driver.discover()
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"this is not a flatbuffer" * 10)
    j = job(attempt="a2")
    driver.prepare(dev, j, bad)
    doc = parse_result(driver.run(dev, j))
    driver.cleanup(dev, j)
    assert doc["status"] == "error" and "frame_pipeline" not in doc
    assert doc["error"]["category"] in ("runtime_error", "unsupported_op", "model_load_failed")


def test_a_harness_that_takes_too_long_is_a_timeout(driver, tiny_pte):
    [dev] = driver.discover()
    j = job(attempt="a3", iterations=100000, timeout_s=0.5)
    driver.prepare(dev, j, tiny_pte.path)
    with pytest.raises(DriverError) as exc:
        doc = parse_result(driver.run(dev, j))
        # the in-harness deadline may fire first: that is reported as a timeout result
        assert doc["error"]["category"] == "timeout"
        raise DriverError("timeout", json.dumps(doc["error"]))
    driver.cleanup(dev, j)
    assert exc.value.category == "timeout"

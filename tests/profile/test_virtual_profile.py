"""The virtual device's simulated operator breakdown: the program's real operator list, the
run's simulated latency, labelled simulated."""

from __future__ import annotations

import statistics

from agents.harness.contract import validate_result
from agents.virtual.device import HARNESS_BUNDLE_ID, VirtualDevice
from agents.virtual.harness import benchmark
from agents.virtual.op_profile import program_operators
from orchestrator.export.artifacts import ArtifactStore
from orchestrator.export.pipeline import ExportRequest, export_artifact
from tests.virtual.helpers import make_job


def test_simulated_breakdown_follows_the_program_and_the_latency_model(shared_artifacts) -> None:
    art, _ = export_artifact(ExportRequest("tiny_cnn", "zoo:tiny_cnn", "xnnpack", 64), ArtifactStore(shared_artifacts))
    pte = art.path.read_bytes()
    ops = program_operators(pte)
    # the XNNPACK payload's own node list: tiny_cnn's five convolutions (BN folded) and its classifier
    assert sum(kind == "XNNConv2d" for kind, _ in ops) == 5 and ("XNNFullyConnected", "XnnpackBackend") in ops
    dev = VirtualDevice(1, "iPhone16,1", "18.6.2", "t")
    dev.install(HARNESS_BUNDLE_ID, {})
    doc, _ = benchmark(dev, make_job(pte, iterations=40, profile={"iterations": 10}), pte)
    validate_result(doc)
    prof = doc["profile"]
    assert prof["status"] == "ok" and prof["simulated"] is True and prof["source"] == "simulated"
    assert [op["kind"] for op in prof["operators"]] == [kind for kind, _ in ops]
    total = sum(op["mean_ms"] for op in prof["operators"])
    assert abs(total - 0.97 * statistics.fmean(doc["latencies_ms"])) < 1e-6  # the latency model's time, split
    assert max(prof["operators"], key=lambda op: op["mean_ms"])["kind"] == "XNNConv2d"


def test_a_program_that_is_not_one_gets_a_failed_profile_not_a_failed_job() -> None:
    fake = b"\x00" * 4096
    dev = VirtualDevice(2, "iPhone16,1", "18.6.2", "u")
    dev.install(HARNESS_BUNDLE_ID, {})
    doc, _ = benchmark(dev, make_job(fake, profile={"iterations": 5}), fake)
    validate_result(doc)
    assert doc["status"] == "ok" and doc["profile"]["status"] == "error"

"""The seed's sweeps are axes of a matrix spec, and every cell gets its own artifact."""

from __future__ import annotations

from orchestrator.export.pipeline import artifact_key
from orchestrator.export.sweep import export_requests
from orchestrator.spec.matrix import loads_spec

SPEC = """
name: sweeps
models: [mobilenet_v3_small, resnet18, efficientnet_b0]
backends: [xnnpack, xnnpack-int8, coreml]
devices: [A17-Pro, A15]
parameters:
  input_resolution: [224, 160, 128]
  batch_size: [1, 4]
"""


def test_each_sweep_cell_has_a_distinct_artifact_key() -> None:
    reqs = export_requests(loads_spec(SPEC))
    assert len(reqs) == 3 * 3 * 3 * 2  # devices do not multiply artifacts
    keys = {artifact_key(r) for r in reqs}
    assert len(keys) == len(reqs)


def test_repeated_axes_do_not_duplicate_artifacts() -> None:
    spec = loads_spec(SPEC.replace("[1, 4]", "[1, 1]").replace("xnnpack-int8", "xnn"))
    assert len(export_requests(spec)) == 3 * 2 * 3

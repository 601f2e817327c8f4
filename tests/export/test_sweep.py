"""The seed's sweeps are axes of a matrix spec, and every cell gets its own artifact."""

from __future__ import annotations

import pytest

from orchestrator.export.pipeline import artifact_key
from orchestrator.export.sweep import export_requests
from orchestrator.spec.matrix import loads_spec
from orchestrator.spec.yamlpos import SpecError

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
    spec = loads_spec(SPEC.replace("[1, 4]", "[1, 1]"))  # a repeated parameter value
    assert len(export_requests(spec)) == 3 * 3 * 3


def test_a_backend_listed_twice_under_an_alias_is_refused_before_planning() -> None:
    # a duplicate cell would be two jobs per cell and a matrix claiming more repeats than it has
    with pytest.raises(SpecError, match=r"backends\[1\]: backend 'xnnpack' is listed twice"):
        loads_spec(SPEC.replace("xnnpack-int8", "xnn"))

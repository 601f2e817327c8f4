"""INT8 artifacts are real quantized programs: much smaller, still delegated, still close."""

from __future__ import annotations

import pytest

from orchestrator.export.pipeline import ExportRequest, export_artifact

from .conftest import tiny

# Program size is dominated by weights, not by the input shape: 64x64 keeps the
# export (and the INT8 calibration) quick without changing the ratio under test.
MBV3_RES = 64


@pytest.fixture(scope="session")
def mbv3_small(store) -> dict[str, object]:
    return {b: export_artifact(ExportRequest("mobilenet_v3_small", "zoo:mobilenet_v3_small", b, MBV3_RES),
                               store)[0]
            for b in ("xnnpack", "xnnpack-int8")}


def test_xnnpack_int8_is_at_most_035x_fp32_for_mobilenet_v3_small(mbv3_small) -> None:
    fp32, int8 = mbv3_small["xnnpack"].meta, mbv3_small["xnnpack-int8"].meta
    assert fp32["params"] == int8["params"] == 2_542_856
    assert int8["size_bytes"] <= 0.35 * fp32["size_bytes"], (int8["size_bytes"], fp32["size_bytes"])
    assert int8["delegation"]["delegated_ratio"] > 0.9
    assert int8["calibration"]["kind"].startswith("synthetic") and "real data" in int8["calibration"]["note"]
    assert int8["recipe"]["lowering"]["quantizer"] == "xnnpack-pt2e"


def test_coreml_weight_int8_halves_the_fp16_program(store) -> None:
    fp16, _ = export_artifact(tiny("coreml"), store)
    int8, _ = export_artifact(tiny("coreml-int8"), store)
    assert fp16.key != int8.key
    assert int8.meta["size_bytes"] <= 0.6 * fp16.meta["size_bytes"]
    assert fp16.meta["delegation"]["delegated_ratio"] == 1.0
    assert fp16.meta["recipe"]["options"] == {"compute_units": "all"}

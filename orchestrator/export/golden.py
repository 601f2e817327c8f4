"""Golden outputs: the eager fp32 output of a model on the contract's deterministic input.

Stored beside each artifact as ``<key>.golden.json`` (full values plus the same summary
fields a result document carries), so a benchmark result can be checked for numerical
sanity: a device that returns garbage fast must not look like a fast device. For a
quantized artifact the golden output is still the fp32 one, so the comparison measures
the quantization error too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.harness.contract import golden_input, summarize_output


def golden_tensor(shape: list[int], seed: int) -> torch.Tensor:
    return torch.from_numpy(golden_input(shape, seed))


def golden_document(model: torch.nn.Module, shape: list[int], seed: int) -> dict[str, Any]:
    with torch.no_grad():
        out = model(golden_tensor(shape, seed))
    if isinstance(out, (tuple, list)):
        out = out[0]  # the harness summarizes output 0 as well
    values = out.detach().float().numpy()
    return {
        "input": {"kind": "golden_input", "shape": list(shape), "seed": seed},
        **summarize_output(values),
        "values": [float(v) for v in values.reshape(-1)],
    }


def compare(golden: dict[str, Any], output_summary: dict[str, Any]) -> dict[str, Any]:
    """Compare a result's ``output`` block (digest, shape, top1, head) with a golden document."""
    head = np.asarray(output_summary.get("head") or [], dtype=np.float64)
    shape_ok = list(output_summary.get("shape") or []) == list(golden["shape"])
    ref = np.asarray(golden["values"][: len(head)], dtype=np.float64)
    if not shape_ok or len(head) == 0 or len(ref) != len(head):
        return {"max_abs_error": None, "top1_agrees": False, "shape_matches": shape_ok,
                "compared_values": 0, "golden_top1": golden["top1"]}
    return {
        "max_abs_error": float(np.max(np.abs(head - ref))),
        "top1_agrees": int(output_summary.get("top1", -1)) == int(golden["top1"]),
        "shape_matches": True,
        "compared_values": len(head),
        "golden_top1": golden["top1"],
    }

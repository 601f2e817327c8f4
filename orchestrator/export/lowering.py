"""Partitioners and quantizers by name: what a backend entry's ``lowering`` refers to.

The pipeline looks names up here; it never branches on backend names. A backend whose
partitioner is missing on this platform raises :class:`ExporterUnavailable`, which the
planner turns into a 'needs a macOS exporter' cell instead of a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class ExporterUnavailable(RuntimeError):
    """This exporter cannot lower the backend (wrong platform or missing module)."""


def _xnnpack_partitioner(options: dict[str, Any]) -> list[Any]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return [XnnpackPartitioner()]


def _coreml_partitioner(options: dict[str, Any]) -> list[Any]:
    import coremltools as ct
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    units = {
        "all": ct.ComputeUnit.ALL,
        "cpu_and_ne": ct.ComputeUnit.CPU_AND_NE,
        "cpu_and_gpu": ct.ComputeUnit.CPU_AND_GPU,
        "cpu_only": ct.ComputeUnit.CPU_ONLY,
    }[options.get("compute_units", "all")]
    kwargs: dict[str, Any] = {
        "minimum_deployment_target": ct.target.iOS18,
        "compute_precision": ct.precision.FLOAT16,
        "compute_unit": units,
    }
    if options.get("weight_quantization") == "int8":
        kwargs["op_linear_quantizer_config"] = {
            "mode": "linear_symmetric", "dtype": "int8", "granularity": "per_channel",
        }
    return [CoreMLPartitioner(compile_specs=CoreMLBackend.generate_compile_specs(**kwargs))]


def _unavailable(name: str) -> Callable[[dict[str, Any]], list[Any]]:
    def f(options: dict[str, Any]) -> list[Any]:
        raise ExporterUnavailable(f"the {name} partitioner is not available in this exporter "
                                  f"(executorch 1.5.1 on this platform); it needs a macOS exporter")
    return f


PARTITIONERS: dict[str, Callable[[dict[str, Any]], list[Any]]] = {
    "xnnpack": _xnnpack_partitioner,
    "coreml": _coreml_partitioner,
    "mps": _unavailable("MPS"),
    "metal": _unavailable("Metal"),
}


def _xnnpack_pt2e(model: torch.nn.Module, example: tuple[torch.Tensor, ...],
                  calibration: list[torch.Tensor]) -> torch.nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = torch.export.export(model, example, strict=False).module()
    prepared = prepare_pt2e(graph, quantizer)
    for batch in calibration:
        prepared(batch)
    return convert_pt2e(prepared)


# A quantizer transforms the eager model before export; "coreml-weight-int8" is not a
# graph transform but a compile option, handled by the partitioner's options.
QUANTIZERS: dict[str, Callable[..., torch.nn.Module]] = {
    "xnnpack-pt2e": _xnnpack_pt2e,
}
PARTITIONER_OPTIONS_FROM_QUANTIZER: dict[str, dict[str, Any]] = {
    "coreml-weight-int8": {"weight_quantization": "int8"},
}

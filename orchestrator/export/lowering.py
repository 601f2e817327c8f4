"""Partitioners and quantizers by name: what a backend entry's ``lowering`` refers to.

The pipeline looks names up here; it never branches on backend names. Whether this
exporter can lower a backend is answered from data (the entry's ``exporters`` list)
and from whether the partitioner's module imports here, so the planner can mark a cell
'needs a macOS exporter' instead of crashing. Nothing here imports torch at module
load: the registry validates names against these tables and is imported by the spec
loader, which should stay light.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import config

if TYPE_CHECKING:
    import torch

    from orchestrator.export.registry import Backend


class ExporterUnavailable(RuntimeError):
    """This exporter cannot lower the backend (wrong platform or missing module)."""


@dataclass(frozen=True)
class Partitioner:
    module: str  # imported only to probe availability: absent module = cannot lower here
    build: Callable[[dict[str, Any]], list[Any]]


@dataclass(frozen=True)
class Quantizer:
    """Either a graph transform applied before export (PT2E) or options for the partitioner
    (CoreML's weight quantization happens inside the CoreML conversion)."""

    transform: Callable[..., Any] | None = None
    partitioner_options: dict[str, Any] = field(default_factory=dict)
    calibrated: bool = False  # a calibrated quantizer's ranges come from calibration_set()


def _xnnpack(options: dict[str, Any]) -> list[Any]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return [XnnpackPartitioner()]


def _coreml(options: dict[str, Any]) -> list[Any]:
    import coremltools as ct
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    units = {
        "all": ct.ComputeUnit.ALL,
        "cpu_and_ne": ct.ComputeUnit.CPU_AND_NE,
        "cpu_and_gpu": ct.ComputeUnit.CPU_AND_GPU,
        "cpu_only": ct.ComputeUnit.CPU_ONLY,
    }[options.get("compute_units") or "all"]
    specs = CoreMLBackend.generate_compile_specs(
        minimum_deployment_target=ct.target.iOS18,
        compute_precision=ct.precision.FLOAT16,
        compute_unit=units,
        op_linear_quantizer_config=options.get("op_linear_quantizer_config"),
    )
    return [CoreMLPartitioner(compile_specs=specs)]


def _metal(options: dict[str, Any]) -> list[Any]:
    from executorch.backends.apple.metal.metal_backend import MetalBackend
    from executorch.backends.apple.metal.metal_partitioner import MetalPartitioner

    return [MetalPartitioner([MetalBackend.generate_method_name_compile_spec("forward")])]


def _mps(options: dict[str, Any]) -> list[Any]:
    from executorch.backends.apple.mps.partition import MPSPartitioner

    return [MPSPartitioner()]


PARTITIONERS: dict[str, Partitioner] = {
    "xnnpack": Partitioner("executorch.backends.xnnpack.partition.xnnpack_partitioner", _xnnpack),
    "coreml": Partitioner("executorch.backends.apple.coreml.partition", _coreml),
    # executorch 1.5.1 has no backends/apple/mps: the probe fails on every exporter that
    # runs this wheel, and an older ExecuTorch on a macOS exporter is needed.
    "mps": Partitioner("executorch.backends.apple.mps.partition", _mps),
    # Metal lowers through AOTInductor and compiles Metal shaders: macOS only.
    "metal": Partitioner("executorch.backends.apple.metal.metal_partitioner", _metal),
}


def _xnnpack_pt2e(model: torch.nn.Module, example: tuple[torch.Tensor, ...],
                  calibration: list[torch.Tensor]) -> torch.nn.Module:
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = torch.export.export(model, example, strict=False).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    return convert_pt2e(prepared)


QUANTIZERS: dict[str, Quantizer] = {
    "xnnpack-pt2e": Quantizer(transform=_xnnpack_pt2e, calibrated=True),
    # Weight-only: PT2E activation quantization does not lower to CoreML with executorch
    # 1.5.1 / coremltools 9 (int8 cast unsupported), see /work/shared/notes/executorch-export.md.
    "coreml-weight-int8": Quantizer(partitioner_options={"op_linear_quantizer_config": {
        "mode": "linear_symmetric", "dtype": "int8", "granularity": "per_channel",
    }}),
}


def _module_available(module: str) -> bool:
    """Is ``module`` installed? Looked up on disk, not imported: importing a partitioner pulls
    in exir and its backend (seconds), which a cache hit or a planner must not pay."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None:
        return False
    for location in spec.submodule_search_locations or []:
        base = Path(location, *rest)
        if base.is_dir() or base.with_suffix(".py").is_file():
            return True
    return False


def exporter_can_lower(backend: Backend | str, platform: str | None = None) -> tuple[bool, str]:
    """Can an exporter on ``platform`` (default: this process's) lower ``backend``?

    Returns ``(True, "")`` or ``(False, reason)``; the reason is what a report shows in
    the cell, e.g. "needs a macOS exporter".
    """
    from orchestrator.export.registry import registry

    b = registry().resolve(backend) if isinstance(backend, str) else backend
    platform = platform or config.exporter_platform()
    if not b.can_export_on(platform):
        wanted = " or ".join({"macos": "macOS", "linux": "Linux"}.get(p, p) for p in b.exporters)
        return False, f"needs a {wanted} exporter"
    if platform == config.exporter_platform():
        part = PARTITIONERS[b.lowering["partitioner"]]
        if not _module_available(part.module):
            return False, (f"{b.display} partitioner ({part.module}) is missing from this exporter's "
                           "executorch; it needs an exporter with that backend built in")
    return True, ""


def choose_exporter(backend: Backend | str, available: Iterable[str]) -> tuple[str | None, str]:
    """Which of the ``available`` exporter platforms (those with live ``export.<platform>``
    workers, in order of preference) should lower ``backend``: ``(platform, "")``, or
    ``(None, reason)`` for the coordinator to show in the cell."""
    reason = "no exporter platform available"
    for platform in available:
        ok, why = exporter_can_lower(backend, platform)
        if ok:
            return platform, ""
        reason = why
    return None, reason


def partitioners_for(backend: Backend, options: dict[str, Any]) -> list[Any]:
    ok, reason = exporter_can_lower(backend)
    if not ok:
        raise ExporterUnavailable(f"{backend.name}: {reason}")
    quantizer = QUANTIZERS.get(backend.lowering.get("quantizer") or "")
    extra = quantizer.partitioner_options if quantizer else {}
    return PARTITIONERS[backend.lowering["partitioner"]].build({**backend.lowering, **options, **extra})


def quantize(backend: Backend, model: torch.nn.Module, example: tuple[torch.Tensor, ...],
             calibration: Callable[[], list[torch.Tensor]]) -> torch.nn.Module:
    """Apply the backend's graph-transform quantizer, if it has one; calibration is built lazily."""
    quantizer = QUANTIZERS.get(backend.lowering.get("quantizer") or "")
    if quantizer is None or quantizer.transform is None:
        return model
    return quantizer.transform(model, example, calibration() if quantizer.calibrated else [])

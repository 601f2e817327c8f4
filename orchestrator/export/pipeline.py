"""Model -> .pte for one backend, through the content-addressed store.

``export_artifact(request)`` is what the exporter worker's Celery task calls; it is
plain domain code so tests and ``benchfarm export`` use it directly.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import asdict, dataclass
from importlib import import_module
from importlib.metadata import version
from typing import Any

import torch

from orchestrator.export import lowering, zoo
from orchestrator.export.artifacts import ArtifactStore, StoredArtifact, recipe_key
from orchestrator.export.registry import registry

RECIPE_VERSION = 1
CALIBRATION_SEED = 7
CALIBRATION_BATCHES = 8
GOLDEN_SEED = 1234


@dataclass(frozen=True)
class ExportRequest:
    model: str  # display name used in the spec
    source: str  # zoo:<name> | import:<pkg.mod:factory> | pte:<path>
    backend: str
    input_resolution: int = 224
    batch_size: int = 1
    compute_units: str = "all"

    def input_shape(self) -> list[int]:
        return [self.batch_size, 3, self.input_resolution, self.input_resolution]


def versions() -> dict[str, str]:
    return {"torch": torch.__version__, "executorch": version("executorch")}


def _source_fingerprint(source: str) -> str:
    kind, _, ref = source.partition(":")
    if kind == "zoo":
        return inspect.getsource(zoo)
    if kind == "import":
        mod, _, _ = ref.partition(":")
        return inspect.getsource(import_module(mod))
    from orchestrator.export.artifacts import file_sha256
    from pathlib import Path

    return file_sha256(Path(ref))


def recipe(req: ExportRequest) -> dict[str, Any]:
    backend = registry().resolve(req.backend)
    return {
        "recipe_version": RECIPE_VERSION,
        "source": req.source,
        "source_fingerprint": recipe_key({"src": _source_fingerprint(req.source)}),
        "weights_seed": zoo.WEIGHTS_SEED,
        "backend": backend.name,
        "lowering": backend.lowering,
        "input_shape": req.input_shape(),
        "compute_units": req.compute_units,
        "versions": versions(),
    }


def artifact_key(req: ExportRequest) -> str:
    return recipe_key(recipe(req))


def build_model(source: str) -> torch.nn.Module:
    kind, _, ref = source.partition(":")
    if kind == "zoo":
        return zoo.build(ref)
    if kind == "import":
        mod, _, attr = ref.partition(":")
        torch.manual_seed(zoo.WEIGHTS_SEED)
        return getattr(import_module(mod), attr)().eval()
    raise ValueError(f"cannot build a torch model from {source!r}")


def calibration_set(shape: list[int]) -> list[torch.Tensor]:
    """Deterministic calibration inputs. They calibrate ranges for latency benchmarking;
    accuracy figures of a quantized model need real data, which this is not."""
    g = torch.Generator().manual_seed(CALIBRATION_SEED)
    return [torch.rand(shape, generator=g) for _ in range(CALIBRATION_BATCHES)]


def lower(req: ExportRequest) -> tuple[bytes, dict[str, Any]]:
    """Export and lower; returns the program bytes and what was learnt on the way."""
    from executorch.exir import to_edge_transform_and_lower

    backend = registry().resolve(req.backend)
    spec = backend.lowering
    options = {"compute_units": req.compute_units, **spec}
    quantizer = spec.get("quantizer")
    options.update(lowering.PARTITIONER_OPTIONS_FROM_QUANTIZER.get(quantizer or "", {}))
    partitioners = lowering.PARTITIONERS[spec["partitioner"]](options)

    model = build_model(req.source)
    example = (torch.rand(req.input_shape(), generator=torch.Generator().manual_seed(0)),)
    if quantizer in lowering.QUANTIZERS:
        model = lowering.QUANTIZERS[quantizer](model, example, calibration_set(req.input_shape()))
    exported = torch.export.export(model, example, strict=False)
    edge = to_edge_transform_and_lower(exported, partitioner=partitioners)
    graph = edge.exported_program().graph_module.graph
    nodes = [n for n in graph.nodes if n.op == "call_function"]
    delegated = sum(1 for n in nodes if "executorch_call_delegate" in str(n.target))
    program = edge.to_executorch()
    info = {
        "delegate_calls": delegated,
        "undelegated_ops": len(nodes) - delegated,
        "params": zoo.param_count(build_model(req.source)) if not req.source.startswith("pte:") else None,
    }
    return program.buffer, info


def export_artifact(req: ExportRequest, store: ArtifactStore | None = None) -> tuple[StoredArtifact, bool]:
    """Return (artifact, cache_hit). Exports only when the recipe's key is not stored."""
    store = store or ArtifactStore()
    key = artifact_key(req)
    if store.exists(key):
        return store.get(key), True
    started = time.perf_counter()
    data, info = lower(req)
    meta = {
        "request": asdict(req),
        "recipe": recipe(req),
        "export_time_s": round(time.perf_counter() - started, 3),
        **info,
    }
    return store.put(key, data, meta), False

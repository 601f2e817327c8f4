"""Model -> .pte for one backend, through the content-addressed store.

``export_artifact(request)`` is what the exporter worker's Celery task calls; it is
plain domain code so tests and ``benchfarm export`` use it directly. The backend entry
(``backends.yaml``) says how to lower; nothing here branches on a backend's name.

INT8 calibration uses :func:`calibration_set`, a small deterministic synthetic set
generated here. It gives quantization ranges that are good enough for *latency and size*
benchmarking; it is not image data, so accuracy figures of quantized artifacts need a
real calibration set and are never reported from these artifacts.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestrator import config
from orchestrator.export import isolated, lowering, programs
from orchestrator.export.artifacts import ArtifactCorrupted, ArtifactStore, StoredArtifact, recipe_key
from orchestrator.export.locking import DEFAULT_WAIT_S, export_lock
from orchestrator.export.recipe import CALIBRATION_BATCHES, CALIBRATION_SEED, recipe, versions
from orchestrator.export.recipe import artifact_key as artifact_key  # re-exported: the exporter's API
from orchestrator.export.registry import Backend, registry
from orchestrator.export.request import GOLDEN_SEED, ExportRequest
from orchestrator.export.sources import Source, build_model

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def calibration_set(shape: list[int]) -> list[torch.Tensor]:
    """Deterministic synthetic calibration inputs (see the module docstring: ranges only)."""
    import torch

    g = torch.Generator().manual_seed(CALIBRATION_SEED)
    return [torch.rand(shape, generator=g) for _ in range(CALIBRATION_BATCHES)]


@dataclass
class Produced:
    program: bytes
    info: dict[str, Any]
    golden: dict[str, Any] | None = None
    etrecord: bytes | None = None


def _etrecord_bytes(program: Any) -> bytes | None:
    """The ETRecord the lowering recorded (edge + final program, debug handles, delegate
    maps): the profiler's key from runtime events back to the model's modules. A failure to
    write it costs only that mapping, never the export."""
    buf = io.BytesIO()
    try:
        program.get_etrecord().save(buf)
    except Exception:
        log.warning("could not write the ETRecord; the artifact is stored without one", exc_info=True)
        return None
    return buf.getvalue()


def lower_torch_source(req: ExportRequest, backend: Backend) -> Produced:
    """Export and lower a torch source: program bytes, metadata, golden document, ETRecord.

    Runs in this process for a zoo model; an ``import:`` source gets here only inside the
    confined child of ``orchestrator.export.isolated``."""
    # torch only here: storing a program file (``pte:``) needs none, so the API can do it
    import torch
    from executorch.exir import to_edge_transform_and_lower

    from orchestrator.export import analysis, golden, zoo

    partitioners = lowering.partitioners_for(backend, backend.export_options(asdict(req)))
    shape = req.input_shape()
    model = build_model(Source.parse(req.source))
    gold = golden.golden_document(model, shape, GOLDEN_SEED)
    cost = analysis.model_cost(model, golden.golden_tensor(shape, GOLDEN_SEED))
    example = (golden.golden_tensor(shape, GOLDEN_SEED),)
    quantized = lowering.quantize(backend, model, example, lambda: calibration_set(shape))
    exported = torch.export.export(quantized, example, strict=False)
    edge = to_edge_transform_and_lower(exported, partitioner=partitioners, generate_etrecord=True)
    lowered = edge.exported_program()
    delegation = analysis.delegation_breakdown(lowered.graph_module, lowered.graph_signature.user_inputs)
    program = edge.to_executorch()
    meta = {"params": zoo.param_count(model), **cost, "delegation": delegation}
    if backend.lowering.get("quantizer"):
        meta["calibration"] = {"kind": "synthetic uniform[0,1)", "seed": CALIBRATION_SEED,
                               "batches": CALIBRATION_BATCHES,
                               "note": "ranges for latency/size benchmarking; accuracy needs real data"}
    return Produced(program.buffer, meta, gold, _etrecord_bytes(program))


def _produce(req: ExportRequest, backend: Backend, store: ArtifactStore) -> Produced:
    source = Source.parse(req.source)
    if source.kind == "import":  # a registered package's code: never in this (the worker's) process
        return isolated.lower(req)
    if not source.is_program:  # a zoo model: benchfarm's own code, lowered here
        return lower_torch_source(req, backend)
    data = programs.read_program(store, source.digest)  # an uploaded program, from the store only
    return Produced(data, {"params": None, "flops": None, "macs": None, "delegation": None,
                           "declared_backend": backend.name})


def export_artifact(req: ExportRequest, store: ArtifactStore | None = None, redis_client: Any = None,
                    lock_wait_s: float = DEFAULT_WAIT_S) -> tuple[StoredArtifact, bool]:
    """Return (artifact, cache_hit). Exports only when the recipe's key is not stored.

    With ``redis_client``, concurrent callers for the same key (threads, processes,
    exporter workers sharing the store) export it once: one holds the lock, the others
    wait and then read the stored artifact. Raises :class:`lowering.ExporterUnavailable`
    when this exporter cannot lower the backend (e.g. MPS on Linux).
    """
    store = store or ArtifactStore()
    backend = registry().resolve(req.backend)
    if not Source.parse(req.source).is_program:
        ok, reason = lowering.exporter_can_lower(backend)
        if not ok:
            raise lowering.ExporterUnavailable(f"{backend.name}: {reason}")
    rec = recipe(req)
    key = recipe_key(rec)
    hit = _cached(store, key)
    if hit is not None:
        return hit, True
    if redis_client is None:
        return _export_into(store, key, rec, req, backend), False
    with export_lock(redis_client, key, ready=lambda: store.exists(key), wait_s=lock_wait_s):
        # re-check under the lock: the previous holder may have finished just before we got it
        hit = _cached(store, key)
        if hit is not None:
            return hit, True
        return _export_into(store, key, rec, req, backend), False


def _cached(store: ArtifactStore, key: str) -> StoredArtifact | None:
    if not store.exists(key):
        return None
    try:
        return store.get(key)
    except ArtifactCorrupted as exc:
        log.warning("%s; removing it and exporting again", exc)
        store.remove(key)
        return None


def _export_into(store: ArtifactStore, key: str, rec: dict[str, Any], req: ExportRequest,
                 backend: Backend) -> StoredArtifact:
    started = time.perf_counter()
    out = _produce(req, backend, store)
    meta = {
        "request": asdict(req),
        "recipe": rec,
        "backend": backend.name,
        "backend_display": backend.display,
        "input_shape": req.input_shape(),
        "export_time_s": round(time.perf_counter() - started, 3),
        "exporter": {"platform": config.exporter_platform(), "versions": versions()},
        "created_at": datetime.now(UTC).isoformat(),
        "golden_seed": GOLDEN_SEED if out.golden is not None else None,
        **out.info,
    }
    return store.put(key, out.program, meta, golden=out.golden, etrecord=out.etrecord)


def compare_to_golden(store: ArtifactStore, key: str, output_summary: dict[str, Any]) -> dict[str, Any]:
    """``{max_abs_error, top1_agrees, ...}`` of a result's ``output`` block against the golden output."""
    from orchestrator.export import golden

    return golden.compare(store.golden(key), output_summary)

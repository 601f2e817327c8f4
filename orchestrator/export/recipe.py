"""An export's recipe (everything that determines the program bytes) and the artifact key it hashes to.

Torch-free to import: a ``pte:`` recipe is the file's sha256, computed by anyone; a torch
source's recipe fingerprints the built model (``sources.fingerprint``, which imports torch
and the model's code), so only an exporter computes it. The coordinator therefore keys a
torch source's jobs by :func:`request_key` until the exporter reports the artifact key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from orchestrator.export import zoo_index
from orchestrator.export.artifacts import recipe_key
from orchestrator.export.registry import REGISTRY_PATH, registry
from orchestrator.export.request import ExportRequest
from orchestrator.export.sources import Source, fingerprint

# Bump when the export procedure changes in a way the other recipe fields do not capture.
RECIPE_VERSION = 3
CALIBRATION_SEED = 7
CALIBRATION_BATCHES = 8
_EXPORTER_PACKAGES = ("torch", "executorch", "torchao", "coremltools")
# The code a zoo model's artifact key comes from besides the request: the recipe, the fingerprint
# (sources), the models (zoo: every class a zoo model is built of is defined there, tests/export
# checks it), the weight seed, the store's canonical hash and the backend registry's code.
_ZOO_KEY_MODULES = ("orchestrator.export.recipe", "orchestrator.export.sources", "orchestrator.export.zoo",
                    "orchestrator.export.zoo_index", "orchestrator.export.artifacts", "orchestrator.export.registry")


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    # once per process: the packages a process imported do not change under it (reading the
    # installed metadata cost ~1 ms per package, on every export request)
    found = []
    for pkg in _EXPORTER_PACKAGES:
        try:
            found.append((pkg, version(pkg)))
        except PackageNotFoundError:
            found.append((pkg, "absent"))
    return tuple(found)


def versions() -> dict[str, str]:
    return dict(_versions())


@lru_cache(maxsize=1)
def zoo_code_identity() -> str:
    """A digest of everything besides the request that a zoo model's artifact key depends on: the
    exporter packages' versions, the code of :data:`_ZOO_KEY_MODULES` and ``backends.yaml``.
    Exporters with one identity key a zoo request alike, so the coordinator may dispatch a zoo
    artifact an exporter keyed before without asking again (``coordinator.exports``). Read from
    the files, never imported: a worker computes it without torch."""
    h = hashlib.sha256(json.dumps(versions(), sort_keys=True).encode())
    for name in _ZOO_KEY_MODULES:
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"cannot find the code of {name}")
        h.update(name.encode() + b"\0" + Path(spec.origin).read_bytes())
    h.update(REGISTRY_PATH.read_bytes())
    return h.hexdigest()


def recipe(req: ExportRequest) -> dict[str, Any]:
    """Everything that determines the program bytes; its canonical hash is the artifact key."""
    backend = registry().resolve(req.backend)
    source = Source.parse(req.source)
    if source.is_program:
        # A user's program is stored as-is: its bytes and the backend they declare are all there is.
        return {"recipe_version": RECIPE_VERSION, "kind": "pte", "pte_sha256": fingerprint(source),
                "backend": backend.name}
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "torch",
        "source": req.source,
        "source_fingerprint": fingerprint(source),
        "weights_seed": zoo_index.WEIGHTS_SEED,
        "backend": backend.name,
        "lowering": backend.lowering,
        "options": backend.export_options(asdict(req)),
        "input_shape": req.input_shape(),
        "calibration": {"seed": CALIBRATION_SEED, "batches": CALIBRATION_BATCHES}
        if backend.lowering.get("quantizer") else None,
        "versions": versions(),
    }


def artifact_key(req: ExportRequest) -> str:
    return recipe_key(recipe(req))


def request_key(req: ExportRequest) -> str:
    """What the coordinator keys a request by before an exporter has fingerprinted its model:
    the request itself and the backend's lowering, never the model's code (which only an
    exporter may import)."""
    backend = registry().resolve(req.backend)
    doc = {"request": asdict(req), "backend": backend.name, "lowering": backend.lowering,
           "recipe_version": RECIPE_VERSION}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def keyed_without_exporter(req: ExportRequest) -> bool:
    """True when the artifact key can be computed here, without importing the model (a program file)."""
    return Source.parse(req.source).is_program

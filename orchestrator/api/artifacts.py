"""Artifact download for agents on other hosts: ``GET /artifacts/{key}`` (the program),
``/meta`` and ``/golden``. A token with the ``read`` scope is required — a farm's models may be unreleased work.

Keys are checked before any path is built (64 lowercase hex: no traversal), and the
program is verified against its recorded sha256 before it is served, so a corrupt store
answers 500 with the reason instead of shipping bad bytes to a phone.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import FileResponse, Response

from orchestrator.api.auth import require
from orchestrator.api.guard import GuardedRoute
from orchestrator.export.artifacts import ArtifactCorrupted, ArtifactError, ArtifactStore, BadArtifactName
from orchestrator.store.audit import Actor

# checked before any path is built (also by the store); in the schema, so clients see the rule
KEY = Path(pattern=r"^[0-9a-f]{64}$", description="the artifact key: 64 lowercase hex characters")
router = APIRouter(prefix="/artifacts", tags=["artifacts"], route_class=GuardedRoute)


def _stored(key: str, verify: bool) -> Any:
    store = ArtifactStore()
    try:
        return store, store.get(key, verify=verify)
    except BadArtifactName as exc:
        raise HTTPException(422, str(exc)) from None
    except ArtifactCorrupted as exc:
        raise HTTPException(500, f"the store's copy is corrupt: {exc}") from None
    except ArtifactError:
        raise HTTPException(404, f"no artifact {key}") from None


@router.get("/{key}", response_class=FileResponse)
def download(key: str = KEY, *, _actor: Actor = Depends(require("read"))) -> FileResponse:
    """The ExecuTorch program; its sha256 is in ``X-Benchfarm-Sha256``."""
    _store, art = _stored(key, verify=True)
    return FileResponse(art.path, media_type="application/octet-stream", filename=f"{key}.pte",
                        headers={"X-Benchfarm-Sha256": art.meta["file_sha256"]})


@router.get("/{key}/meta")
def meta(key: str = KEY, *, _actor: Actor = Depends(require("read"))) -> dict[str, Any]:
    """The artifact's metadata (recipe, versions, sizes, sha256 of program and golden)."""
    _store, art = _stored(key, verify=False)
    return art.meta


@router.get("/{key}/golden")
def golden(key: str = KEY, *, _actor: Actor = Depends(require("read"))) -> Response:
    """The eager model's golden output for the fixed seeded input (404 for a .pte source)."""
    store, _art = _stored(key, verify=False)
    try:
        store.golden(key)  # verified against its recorded sha256; served byte for byte
        return Response(store.golden_path(key).read_bytes(), media_type="application/json")
    except ArtifactCorrupted as exc:
        raise HTTPException(500, f"the store's copy is corrupt: {exc}") from None
    except ArtifactError as exc:
        raise HTTPException(404, str(exc)) from None

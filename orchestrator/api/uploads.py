"""``POST /programs``: upload a ``.pte`` into the store (answer: its ``pte:sha256:`` source for
specs); ``POST /runs/pte``: upload one and run it on the named backends and devices.

These are the only way a program reaches the farm through the API: a spec names programs
by digest and never by a path on the server (``orchestrator.export.programs``).

The upload is bounded twice: the API's body limit (:class:`orchestrator.api.guard.BodyLimit`,
these paths' limit being the upload limit plus the form's overhead) refuses a body over it by
Content-Length before reading, or by counting chunks while it streams, so a chunked upload
cannot fill the disk; and the staged file is measured again. The client's file
name is only ever a *label*: the program is stored content-addressed (sha256), so no part
of the name reaches a path.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml
from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from pydantic import BaseModel, Field

from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.api.auth import require
from orchestrator.api.deps import get_fleet
from orchestrator.api.errors import responses
from orchestrator.api.guard import GuardedRoute
from orchestrator.api.runs import Submitted
from orchestrator.api.submit import RunMeta, submit_spec_text
from orchestrator.store.audit import Actor

DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024**2
# multipart boundaries and the form fields ride in the same body as the file
FORM_OVERHEAD_BYTES = 1024**2
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)
programs_router = APIRouter(prefix="/programs", tags=["programs"], route_class=GuardedRoute)


def max_upload_bytes() -> int:
    return int(os.environ.get("BENCHFARM_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES))


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"upload larger than the {limit}-byte limit (BENCHFARM_MAX_UPLOAD_BYTES)")


def model_label(model: str, filename: str | None) -> str:
    """The model's display name: the ``model`` field, else the client's file name (basename
    only, ``.pte`` required). Either way only safe characters survive."""
    if model:
        base, field = model, "model"
    else:
        base, field = re.split(r"[\\/]", filename or "")[-1], "file"
        if not base.lower().endswith(".pte"):
            raise HTTPException(422, f"file: the upload must be a .pte program, got name {base[:80]!r}")
        base = base[:-4]
    label = _SAFE.sub("_", base).strip("._")[:100]
    if not label:
        raise HTTPException(422, f"{field}: {base[:80]!r} has no usable name; pass a 'model' field "
                                 "of letters, digits, '.', '_' or '-'")
    return label


def pte_spec_text(pte: Path, model: str, backends: list[str], devices: list[str],
                  parameters: dict[str, Any] | None = None, name: str = "") -> str:
    """Store the program ``pte`` by digest and return a matrix spec that runs it.

    Backend names are resolved by the spec validation first (``SpecError`` names the field),
    so a typo never stores anything. Raises ``BadSource`` when the file is not a program.
    ``pte`` is an upload's staging file or, from a CLI, the user's own file."""
    from orchestrator.export.artifacts import ArtifactStore
    from orchestrator.export.programs import store_program
    from orchestrator.spec.matrix import loads_spec

    def spec_for(digest: str) -> str:
        doc = {"name": name or f"pte-{model}", "models": [{"name": model, "source": f"pte:sha256:{digest}"}],
               "backends": backends, "devices": devices, "parameters": parameters or {}}
        return yaml.safe_dump(doc, sort_keys=False)

    loads_spec(spec_for("0" * 64), "upload.yaml")
    return spec_for(store_program(ArtifactStore(), pte))


def _stage(file: UploadFile, limit: int) -> Path:
    """The upload in a staging file of the store (the caller removes it), measured again."""
    staging = config.artifacts_dir() / "uploads"
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=staging, suffix=".pte")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        if os.path.getsize(tmp) > limit:
            raise _too_large(limit)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _parameters(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HTTPException(422, f"parameters: not YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "parameters: must be a mapping, e.g. {iterations: 50, input_resolution: [224]}")
    return data


def _meta(text: str) -> RunMeta | None:
    if not text.strip():
        return None
    try:
        return RunMeta.model_validate_json(text)
    except ValueError as exc:
        raise HTTPException(422, f"meta: {exc}") from None


@router.post("/pte", status_code=201, response_model=Submitted,
             responses=responses(400, 401, 403, 413, 422, 429, 503))
def submit_pte(request: Request, file: UploadFile = File(..., description="the ExecuTorch program (.pte)"),
                     backends: str = Form(..., description="comma-separated backends, e.g. xnnpack"),
                     devices: str = Form(..., description="comma-separated device classes, e.g. A17-Pro"),
                     model: str = Form("", description="model name (default: from the file name)"),
                     name: str = Form("", description="run name"),
                     parameters: str = Form("", description="spec parameters as YAML/JSON mapping"),
                     trigger: Literal["manual", "nightly", "pr"] = Form("manual"),
                     requested_by: str = Form(""), meta: str = Form("", description="RunMeta as JSON"),
                     actor: Actor = Depends(require("submit")), fleet: Fleet = Depends(get_fleet)) -> Submitted:
    label = model_label(model, file.filename)
    staged = _stage(file, request.app.state.max_upload_bytes)
    try:
        spec_text = pte_spec_text(staged, label, _csv(backends), _csv(devices), _parameters(parameters), name)
    finally:
        staged.unlink(missing_ok=True)
    run_id, jobs = submit_spec_text(spec_text, fleet, source="upload.yaml", trigger=trigger,
                                    requested_by=requested_by or actor.principal, meta=_meta(meta), actor=actor)
    return Submitted(id=run_id, trigger=trigger, jobs=jobs, url=f"/runs/{run_id}")


class Program(BaseModel):
    sha256: str = Field(description="the program's sha256")
    source: str = Field(description="the model source naming it in a spec: pte:sha256:<hex>")
    size_bytes: int


@programs_router.post("", status_code=201, response_model=Program)
def upload_program(request: Request, file: UploadFile = File(..., description="the ExecuTorch program (.pte)"),
                   _actor: Actor = Depends(require("submit"))) -> Program:
    """Store a program by content; name it in a spec's ``models[].source`` as the answer's ``source``."""
    from orchestrator.export.artifacts import ArtifactStore
    from orchestrator.export.programs import program_path, store_program

    staged = _stage(file, request.app.state.max_upload_bytes)
    try:
        store = ArtifactStore()
        digest = store_program(store, staged)
    finally:
        staged.unlink(missing_ok=True)
    return Program(sha256=digest, source=f"pte:sha256:{digest}", size_bytes=program_path(store, digest).stat().st_size)

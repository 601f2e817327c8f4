"""Uploaded programs: ``.pte`` files that arrive by upload, stored by sha256, named by digest in specs.

A spec never makes the coordinator read a path: past the front door a program is a
``pte:sha256:<hex>`` source, naming bytes already in the artifact store's ``programs/``
area (``<root>/programs/<hex>``). Those bytes get there one of two ways only:

- the API's upload endpoints (``POST /programs``, ``POST /runs/pte``), from the request body;
- a CLI on a host that holds the file (``benchfarm submit``/``export``/``pr submit``), which
  reads the user's own file as the user and stores it: :func:`localize_spec_text` turns
  each ``pte:<path>`` of a spec into its digest before anything is submitted.

Torch-free: the API and coordinator use it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from orchestrator.export.artifacts import ArtifactStore, store_hashed
from orchestrator.export.sources import BadSource, Source, check_pte

_HEX = re.compile(r"^[0-9a-f]{64}$")


def program_path(store: ArtifactStore, digest: str) -> Path:
    if not _HEX.fullmatch(digest):  # checked before it becomes a path
        raise BadSource(f"program digest must be 64 lowercase hex characters, got {digest[:80]!r}")
    return store.root / "programs" / digest


def has_program(store: ArtifactStore, digest: str) -> bool:
    return program_path(store, digest).is_file()


def store_program(store: ArtifactStore, path: Path) -> str:
    """Copy the program at ``path`` (checked: size, ExecuTorch header) into the store; its sha256."""
    check_pte(path)
    with open(path, "rb") as src:
        digest, _ = store_hashed(src, store.root / "programs", lambda d: program_path(store, d))
    return digest


def read_program(store: ArtifactStore, digest: str) -> bytes:
    """The uploaded program's bytes, checked against the digest that names them."""
    path = program_path(store, digest)
    if not path.is_file():
        raise BadSource(f"no uploaded program sha256:{digest} in the store; upload it first "
                        "(POST /programs) or submit with the CLI on the host that holds the file")
    data = check_pte(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise BadSource(f"the stored program sha256:{digest} does not match its digest (corrupt store)")
    return data


def localize_spec_text(text: str, source: str, store: ArtifactStore) -> str:
    """A CLI's spec with every local ``pte:<path>`` stored and replaced by ``pte:sha256:<hex>``.

    Validates first (``SpecError`` names source:line); the file is read here, by the user
    running the CLI, never by the coordinator. Returns ``text`` unchanged when no model
    names a local file."""
    from orchestrator.spec.matrix import loads_spec

    spec = loads_spec(text, source, local_files=True)
    local = {m.source for m in spec.models if Source.parse(m.source, local_files=True).is_local_file}
    if not local:
        return text
    digests = {s: f"pte:sha256:{store_program(store, Path(s.partition(':')[2]))}" for s in local}
    data: Any = yaml.safe_load(text)
    for model in data["models"]:
        if isinstance(model, dict) and model.get("source") in digests:
            model["source"] = digests[model["source"]]
    out = yaml.safe_dump(data, sort_keys=False)
    loads_spec(out, source)  # what the coordinator will accept
    return out

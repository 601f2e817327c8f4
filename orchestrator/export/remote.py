"""An artifact store that fills itself from the coordinator's API.

An agent on another host has no access to the coordinator's store. With
``BENCHFARM_ARTIFACT_URL`` (the API's base URL) and ``BENCHFARM_API_TOKEN`` set, its device
workers use this store: a key already in the local cache is read (and verified) locally;
otherwise meta, program and golden output are downloaded, the program's sha256 checked
against the metadata, and the set written atomically into the local cache — the local
store's ``put`` writes the metadata last, so a half-finished download reads as absent.
Any failure is an :class:`ArtifactError`, which the runner reports as ``transfer_failed``
(an infrastructure failure: retried, possibly on another host). The token is sent, never
logged.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx

from orchestrator.export.artifacts import ArtifactCorrupted, ArtifactError, ArtifactStore, StoredArtifact

TIMEOUT_S = 60.0
MAX_PROGRAM_BYTES = 2 * 1024**3


class RemoteArtifactStore(ArtifactStore):
    """The local store (a cache), filled from the coordinator on a miss."""

    def __init__(self, base_url: str, token: str, root: Path | None = None, timeout_s: float = TIMEOUT_S):
        super().__init__(root)
        headers = {"User-Agent": "benchfarm-agent"} | ({"Authorization": f"Bearer {token}"} if token else {})
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers)

    @classmethod
    def from_env(cls) -> ArtifactStore:
        """The device worker's store: remote-backed when ``BENCHFARM_ARTIFACT_URL`` is set."""
        url = os.environ.get("BENCHFARM_ARTIFACT_URL", "")
        if not url:
            return ArtifactStore()
        return cls(url, os.environ.get("BENCHFARM_API_TOKEN", ""))

    def get(self, key: str, verify: bool = True) -> StoredArtifact:
        if not self.exists(key):  # exists() checks the key: nothing odd reaches a URL
            self._download(key)
        return super().get(key, verify=verify)

    def golden(self, key: str) -> dict[str, Any]:
        self.get(key, verify=False)
        return super().golden(key)

    def _fetch(self, path: str, what: str) -> httpx.Response:
        try:
            resp = self._client.get(path)
        except httpx.HTTPError as exc:
            raise ArtifactError(f"cannot download {what}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise ArtifactError(f"cannot download {what}: HTTP {resp.status_code}: {resp.text[:200]}")
        return resp

    def _download(self, key: str) -> None:
        meta = self._fetch(f"/artifacts/{key}/meta", f"artifact {key} metadata").json()
        if int(meta.get("size_bytes", 0)) > MAX_PROGRAM_BYTES:
            raise ArtifactError(f"artifact {key} is {meta['size_bytes']} bytes (limit {MAX_PROGRAM_BYTES})")
        program = self._fetch(f"/artifacts/{key}", f"artifact {key}").content
        got = hashlib.sha256(program).hexdigest()
        if got != meta.get("file_sha256"):
            raise ArtifactCorrupted(f"artifact {key}: downloaded program has sha256 {got[:12]}..., the coordinator "
                                    f"recorded {str(meta.get('file_sha256'))[:12]}...: not cached")
        golden = None
        if meta.get("golden_sha256"):
            raw = self._fetch(f"/artifacts/{key}/golden", f"artifact {key} golden output").content
            if hashlib.sha256(raw).hexdigest() != meta["golden_sha256"]:
                raise ArtifactCorrupted(f"artifact {key}: downloaded golden output does not match its sha256")
            golden = json.loads(raw)
        recorded = {k: v for k, v in meta.items() if k not in ("key", "file_sha256", "size_bytes", "golden_sha256")}
        stored = self.put(key, program, recorded, golden)
        if golden is not None and stored.meta["golden_sha256"] != meta["golden_sha256"]:
            self.remove(key)  # re-serialised differently: the golden check could not vouch for it
            raise ArtifactCorrupted(f"artifact {key}: cached golden output does not match its sha256")

"""Content-addressed artifact store on the filesystem.

An artifact's key is the sha256 of its export recipe (model source, weights seed,
backend entry, export parameters, torch/executorch versions), so an identical recipe
is never exported twice. Files are written atomically (temp file + rename) and their
own sha256 is checked on every read: a corrupted program is detected, not benchmarked (a
process hashes an unchanged file once: :class:`VerifiedFiles`).
Keys are validated as 64 hex digits before they touch a path, so a key from a job
payload or an API call cannot name a file outside the store.

Layout: ``<root>/<key[:2]>/<key>.pte``, ``<key>.golden.json`` (optional),
``<key>.etrecord`` (optional: ExecuTorch's ETRecord from the export, which maps profiling
events back to the model's modules; artifacts stored before it existed have none) and
``<key>.json`` (metadata, written last: its presence marks a complete artifact).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator import config

_KEY = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(RuntimeError):
    pass


class ArtifactCorrupted(ArtifactError):
    pass


class BadArtifactName(ArtifactError, ValueError):
    """A key that is not a sha256 hex digest: it could name a path outside the store."""


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise BadArtifactName(f"artifact key must be 64 lowercase hex characters, got {key!r:.80}")
    return key


def recipe_key(recipe: dict[str, Any]) -> str:
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class VerifiedFiles:
    """The sha256 of files this process has hashed, by the file's identity: (device, inode, size,
    mtime in ns). A program is verified before every job, and hashing it again each time cost a
    device worker milliseconds per job (a large model, hundreds); an unchanged file is hashed once.

    Anything that writes the file moves its mtime, an atomic replace (how the store writes) gives
    a new inode: either one misses here and the file is hashed again. The ctime would also catch
    an mtime set back by hand, but hard-linking the program into a job folder (the host driver)
    moves it every job. A file modified within :data:`RACY_S` of its hash is not remembered
    (git's "racy" entries): the filesystem's clock is coarse (a jiffy), so a same-size rewrite
    right after the hash could keep the mtime it was hashed with."""

    RACY_S = 2.0
    SIZE = 256  # files remembered per process (least recently used dropped first)

    def __init__(self) -> None:
        self._known: OrderedDict[str, tuple[tuple[int, int, int, int], str]] = OrderedDict()
        self._lock = threading.Lock()

    def sha256(self, path: Path) -> str:
        st = os.stat(path)
        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        name = str(path)
        with self._lock:
            known = self._known.get(name)
            if known is not None and known[0] == ident:
                self._known.move_to_end(name)
                return known[1]
        digest = file_sha256(path)
        after = os.stat(path)  # unchanged while it was read, and old enough to trust its mtime
        if (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns) == ident \
                and time.time_ns() - st.st_mtime_ns > self.RACY_S * 1e9:
            with self._lock:
                self._known[name] = (ident, digest)
                self._known.move_to_end(name)
                while len(self._known) > self.SIZE:
                    self._known.popitem(last=False)
        return digest


# one per process: every store object of a worker shares what it has hashed
VERIFIED = VerifiedFiles()


@dataclass(frozen=True)
class StoredArtifact:
    key: str
    path: Path
    meta: dict[str, Any]


class ArtifactStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root or config.artifacts_dir())
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve()

    def _dir(self, key: str) -> Path:
        check_key(key)
        d = (self.root / key[:2]).resolve()  # a symlinked key folder must not lead out of the store
        if self._real_root not in d.parents:
            raise BadArtifactName(f"artifact key {key!r} escapes the store")
        return d

    def pte_path(self, key: str) -> Path:
        return self._dir(key) / f"{key}.pte"

    def meta_path(self, key: str) -> Path:
        return self._dir(key) / f"{key}.json"

    def golden_path(self, key: str) -> Path:
        return self._dir(key) / f"{key}.golden.json"

    def etrecord_path(self, key: str) -> Path:
        return self._dir(key) / f"{key}.etrecord"

    def exists(self, key: str) -> bool:
        d = self._dir(key)
        return (d / f"{key}.pte").exists() and (d / f"{key}.json").exists()

    def put(self, key: str, pte_bytes: bytes, meta: dict[str, Any],
            golden: dict[str, Any] | None = None, etrecord: bytes | None = None) -> StoredArtifact:
        d = self._dir(key)
        d.mkdir(parents=True, exist_ok=True)
        golden_bytes = json.dumps(golden).encode() if golden is not None else None
        meta = dict(meta, key=key, file_sha256=hashlib.sha256(pte_bytes).hexdigest(),
                    size_bytes=len(pte_bytes),
                    golden_sha256=hashlib.sha256(golden_bytes).hexdigest() if golden_bytes else None,
                    etrecord={"sha256": hashlib.sha256(etrecord).hexdigest(), "size_bytes": len(etrecord)}
                    if etrecord else None)
        # program, golden and ETRecord first, metadata last: metadata present means the rest is complete
        _atomic_write(self.pte_path(key), pte_bytes)
        if golden_bytes is not None:
            _atomic_write(self.golden_path(key), golden_bytes)
        if etrecord:
            _atomic_write(self.etrecord_path(key), etrecord)
        _atomic_write(self.meta_path(key), json.dumps(meta, indent=1, sort_keys=True).encode())
        return StoredArtifact(key, self.pte_path(key), meta)

    def get(self, key: str, verify: bool = True) -> StoredArtifact:
        d = self._dir(key)  # once: a job's fetch and a submit each read an artifact like this
        path, meta_path = d / f"{key}.pte", d / f"{key}.json"
        if not (path.exists() and meta_path.exists()):
            raise ArtifactError(f"artifact {key} is not in the store {self.root}")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactCorrupted(f"artifact {key}: metadata is not valid JSON ({exc})") from None
        if verify and VERIFIED.sha256(path) != meta.get("file_sha256"):
            raise ArtifactCorrupted(f"artifact {key}: {path} does not match its recorded sha256")
        return StoredArtifact(key, path, meta)

    def golden(self, key: str) -> dict[str, Any]:
        expected = self.get(key, verify=False).meta.get("golden_sha256")
        if not expected:
            raise ArtifactError(f"artifact {key} has no golden output (a .pte source has no eager model)")
        try:
            data = self.golden_path(key).read_bytes()
        except FileNotFoundError:
            raise ArtifactCorrupted(f"artifact {key}: golden output recorded but missing") from None
        if hashlib.sha256(data).hexdigest() != expected:
            raise ArtifactCorrupted(f"artifact {key}: golden output does not match its recorded sha256")
        return json.loads(data)

    def etrecord(self, key: str) -> Path | None:
        """The artifact's ETRecord file, checked against its recorded sha256; None when the
        artifact has none (a .pte source, or stored before ETRecords were kept)."""
        recorded = self.get(key, verify=False).meta.get("etrecord")
        if not recorded:
            return None
        path = self.etrecord_path(key)
        if not path.exists():
            raise ArtifactCorrupted(f"artifact {key}: ETRecord recorded but missing")
        if file_sha256(path) != recorded["sha256"]:
            raise ArtifactCorrupted(f"artifact {key}: ETRecord does not match its recorded sha256")
        return path

    def remove(self, key: str) -> None:
        # metadata first: a half-removed artifact must read as absent, not as complete
        for p in (self.meta_path(key), self.golden_path(key), self.etrecord_path(key), self.pte_path(key)):
            p.unlink(missing_ok=True)


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def store_hashed(src: Readable, directory: Path, final: Callable[[str], Path], *, prefix: str = ".tmp-",
                 suffix: str = "") -> tuple[str, Path]:
    """Copy ``src`` into ``directory`` while hashing it, fsync, and rename the copy to
    ``final(sha256)``: a reader of a content-addressed store sees a whole file or none, and a
    failure (or a ``final`` that refuses the digest) leaves no temp file behind."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        path = final(digest)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest, path


def _atomic_write(path: Path, data: bytes) -> None:
    store_hashed(io.BytesIO(data), path.parent, lambda _digest: path)

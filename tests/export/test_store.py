"""The artifact store: content-addressed, atomic, verified on read, no path escapes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from orchestrator.export import artifacts
from orchestrator.export.artifacts import ArtifactCorrupted, ArtifactError, ArtifactStore, BadArtifactName

KEY = hashlib.sha256(b"some recipe").hexdigest()


@pytest.mark.parametrize("name", [
    "../../etc/passwd", "/etc/passwd", "..", KEY[:63], KEY.upper(), KEY + "/../x", KEY[:62] + "/.",
    f"{KEY[:60]}\x00abc", "", " " + KEY[1:],
])
def test_names_that_could_escape_the_store_are_rejected(tmp_path: Path, name: str) -> None:
    s = ArtifactStore(tmp_path / "store")
    for op in (s.exists, s.get, s.pte_path, s.golden_path, s.remove):
        with pytest.raises(BadArtifactName):
            op(name)
    with pytest.raises(BadArtifactName):
        s.put(name, b"x", {})
    assert not any(tmp_path.rglob("*.pte"))


def test_put_get_roundtrip_leaves_no_temp_files(tmp_path: Path) -> None:
    s = ArtifactStore(tmp_path)
    art = s.put(KEY, b"\x00ET12program", {"backend": "xnnpack"}, golden={"values": [1.0], "top1": 0})
    assert s.exists(KEY) and art.path == s.pte_path(KEY)
    again = s.get(KEY)
    assert again.meta["size_bytes"] == 12 and again.meta["backend"] == "xnnpack"
    assert s.golden(KEY)["values"] == [1.0]
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_corrupted_program_is_detected(tmp_path: Path) -> None:
    s = ArtifactStore(tmp_path)
    s.put(KEY, b"\x00ET12program", {})
    path = s.pte_path(KEY)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorrupted, match="sha256"):
        s.get(KEY)
    assert s.get(KEY, verify=False).path == path  # the caller may still inspect it


def test_corrupted_golden_and_metadata_are_detected(tmp_path: Path) -> None:
    s = ArtifactStore(tmp_path)
    s.put(KEY, b"prog", {}, golden={"values": [1.0], "top1": 0})
    s.golden_path(KEY).write_text('{"values": [2.0], "top1": 0}')
    with pytest.raises(ArtifactCorrupted, match="golden"):
        s.golden(KEY)
    s.meta_path(KEY).write_text("{not json")
    with pytest.raises(ArtifactCorrupted, match="metadata"):
        s.get(KEY)


def test_missing_artifact_and_missing_golden(tmp_path: Path) -> None:
    s = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactError, match="not in the store"):
        s.get(KEY)
    s.put(KEY, b"prog", {})
    with pytest.raises(ArtifactError, match="no golden output"):
        s.golden(KEY)


def _age(path: Path, seconds: float = 3600) -> None:
    """Give ``path`` an mtime in the past: a file modified just now is never remembered as verified."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def _counting_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    hashed: list[Path] = []
    real = artifacts.file_sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(artifacts, "file_sha256", counting)
    return hashed


def test_an_unchanged_program_is_hashed_once_and_a_corrupted_one_still_detected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = _counting_hashes(monkeypatch)
    s = ArtifactStore(tmp_path)
    s.put(KEY, b"\x00ET12program", {})
    path = s.pte_path(KEY)
    _age(path)
    for _ in range(3):
        assert s.get(KEY).path == path
    assert ArtifactStore(tmp_path).get(KEY).path == path  # another store object of this process
    assert len(hashed) == 1
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))  # in place, same size: only the mtime moved
    with pytest.raises(ArtifactCorrupted, match="sha256"):
        s.get(KEY)


def test_a_replaced_program_is_hashed_again_whatever_its_mtime(tmp_path: Path) -> None:
    s = ArtifactStore(tmp_path)
    s.put(KEY, b"\x00ET12program", {})
    path = s.pte_path(KEY)
    _age(path)
    s.get(KEY)
    st = path.stat()
    other = tmp_path / "other.pte"
    other.write_bytes(b"\x00ET12prograY")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime, another inode
    os.replace(other, path)
    with pytest.raises(ArtifactCorrupted, match="sha256"):
        s.get(KEY)


def test_a_program_modified_just_now_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The filesystem's coarse clock could give a same-size rewrite right after a hash the very
    mtime it was hashed with: a file that recent is hashed on every read."""
    hashed = _counting_hashes(monkeypatch)
    s = ArtifactStore(tmp_path)
    s.put(KEY, b"\x00ET12program", {})
    path = s.pte_path(KEY)
    s.get(KEY)
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the coarse clock's worst case
    with pytest.raises(ArtifactCorrupted, match="sha256"):
        s.get(KEY)
    assert len(hashed) == 2

"""The artifact store: content-addressed, atomic, verified on read, no path escapes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

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

"""Bring-your-own models: a registered package's factory, or an already-exported .pte uploaded by digest."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.export.artifacts import ArtifactCorrupted
from orchestrator.export.pipeline import ExportRequest, artifact_key, export_artifact
from orchestrator.export.programs import store_program
from orchestrator.export.sources import BadSource

MODULE = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)
        self.fc = nn.Linear(8, {classes})

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def make():
    return Net()
"""


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, classes in (("bf_user_net_a", 10), ("bf_user_net_b", 12)):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE.format(classes=classes)))
    monkeypatch.setenv("BENCHFARM_MODEL_PACKAGES", "bf_user_net_a,bf_user_net_b,bf_no_such_module")
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))


def test_import_source_exports_and_its_code_is_in_the_key(store, user_modules: Path) -> None:
    req = ExportRequest("user-net", "import:bf_user_net_a:make", "xnnpack", 32)
    art, hit = export_artifact(req, store)
    assert hit is False and art.meta["params"] == 3 * 8 * 9 + 8 + 8 * 10 + 10
    assert art.meta["delegation"]["delegated_ratio"] > 0.5
    assert store.golden(art.key)["shape"] == [1, 10]
    other = artifact_key(ExportRequest("user-net", "import:bf_user_net_b:make", "xnnpack", 32))
    assert other != art.key
    code = user_modules / "bf_user_net_a.py"  # the key is the registered package's bytes
    code.write_text(code.read_text() + "\n# an edit\n")
    assert artifact_key(req) != art.key


@pytest.mark.parametrize(("source", "message"), [
    ("import:bf_no_such_module:make", "not installed on this host"),
    ("import:os:abort", "not in a registered model package"),
    ("import:os.path:join()", "import:pkg.module:factory"),
    ("zoo:resnet19", "unknown zoo model"),
    ("http://example.com/model", "must start with"),
])
def test_bad_sources_are_clear_errors(store, user_modules: Path, source: str, message: str) -> None:
    with pytest.raises(BadSource, match=message):
        export_artifact(ExportRequest("m", source, "xnnpack", 32), store)


def _uploaded(store, path: Path) -> str:
    return f"pte:sha256:{store_program(store, path)}"


def test_pte_source_is_stored_by_content_with_the_declared_backend(store, user_pte: Path) -> None:
    req = ExportRequest("mine", _uploaded(store, user_pte), "coreml")  # the user says what it is
    art, hit = export_artifact(req, store)
    assert hit is False and art.path.read_bytes() == user_pte.read_bytes()
    assert art.meta["declared_backend"] == "coreml" and art.meta["golden_seed"] is None
    assert export_artifact(req, store)[1] is True
    # same bytes under another name or resolution: same artifact
    same = ExportRequest("renamed", req.source, "coreml", 128)
    assert artifact_key(same) == art.key
    user_pte.write_bytes(user_pte.read_bytes() + b"\0")
    assert artifact_key(ExportRequest("renamed", _uploaded(store, user_pte), "coreml", 128)) != art.key


def test_pte_source_must_be_an_executorch_program(store, tmp_path: Path) -> None:
    fake = tmp_path / "fake.pte"
    fake.write_bytes(b"PK\x03\x04 not a flatbuffer at all")
    with pytest.raises(BadSource, match="not an ExecuTorch program"):
        store_program(store, fake)
    with pytest.raises(BadSource, match="no such file"):
        store_program(store, tmp_path / "absent.pte")
    with pytest.raises(BadSource, match="never by a path on the server"):
        export_artifact(ExportRequest("m", f"pte:{fake}", "xnnpack"), store)
    with pytest.raises(BadSource, match="no uploaded program"):
        export_artifact(ExportRequest("m", "pte:sha256:" + "0" * 64, "xnnpack"), store)


def test_corrupted_artifact_is_detected_and_exported_again(store, user_pte: Path) -> None:
    req = ExportRequest("mine", _uploaded(store, user_pte), "xnnpack")
    art, _ = export_artifact(req, store)
    art.path.write_bytes(art.path.read_bytes()[:-10])  # truncated on disk
    with pytest.raises(ArtifactCorrupted):
        store.get(art.key)
    healed, hit = export_artifact(req, store)
    assert hit is False and healed.key == art.key
    assert store.get(art.key).path.read_bytes() == user_pte.read_bytes()

"""The backend registry is data: resolution by name/alias, validation with file:line errors,
and where each backend can be lowered."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.export.lowering import ExporterUnavailable, exporter_can_lower
from orchestrator.export.pipeline import ExportRequest, artifact_key, export_artifact, recipe
from orchestrator.export.registry import REGISTRY_PATH, BackendRegistry, UnknownBackend, registry
from orchestrator.spec.yamlpos import SpecError


def test_every_seed_backend_is_one_entry() -> None:
    assert set(registry().names()) == {"xnnpack", "xnnpack-int8", "coreml", "coreml-int8", "mps", "metal"}
    assert registry().resolve("Quantized (INT8) + CoreML").name == "coreml-int8"
    assert registry().resolve(" XNN ").name == "xnnpack"
    assert registry().resolve("coreml_fp16").name == "coreml"
    with pytest.raises(UnknownBackend, match="MSP"):
        registry().resolve("MSP")


@pytest.mark.parametrize(("backend", "platform", "ok"), [
    ("xnnpack", "linux", True), ("coreml-int8", "linux", True), ("mps", "linux", False),
    ("metal", "linux", False), ("metal", "macos", True),
])
def test_exporter_can_lower(backend: str, platform: str, ok: bool) -> None:
    can, reason = exporter_can_lower(backend, platform)
    assert can is ok
    assert (reason == "needs a macOS exporter") is not ok


def test_mps_on_linux_is_a_clear_refusal_not_a_crash(store) -> None:
    with pytest.raises(ExporterUnavailable, match="needs a macOS exporter"):
        export_artifact(ExportRequest("tiny_cnn", "zoo:tiny_cnn", "mps", 64), store)


def _bad_registry(tmp_path: Path, old: str, new: str) -> Path:
    text = REGISTRY_PATH.read_text()
    assert old in text
    path = tmp_path / "backends.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_registry_typo_names_file_line_and_field(tmp_path: Path) -> None:
    path = _bad_registry(tmp_path, "partitioner: xnnpack,", "partitioner: xnpack,")
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "xnpack," in s)
    with pytest.raises(SpecError) as err:
        BackendRegistry.load(path)
    assert f"backends.yaml:{line}: xnnpack.lowering: unknown partitioner 'xnpack'" in str(err.value)


def test_registry_rejects_unknown_exporter_platform(tmp_path: Path) -> None:
    path = _bad_registry(tmp_path, "exporters: [macos]", "exporters: [windows]")
    with pytest.raises(SpecError, match=r"mps\.exporters\[0\]"):
        BackendRegistry.load(path)


def test_compute_units_only_key_backends_that_declare_them() -> None:
    def key(backend: str, units: str) -> str:
        return artifact_key(ExportRequest("tiny_cnn", "zoo:tiny_cnn", backend, 64, 1, units))

    assert key("xnnpack", "all") == key("xnnpack", "cpu_only")
    assert key("coreml", "all") != key("coreml", "cpu_only")
    assert recipe(ExportRequest("m", "zoo:tiny_cnn", "coreml", 64, 1, "cpu_and_ne"))["options"] == {
        "compute_units": "cpu_and_ne"}
    with pytest.raises(ValueError, match="compute_units='gpu'"):
        recipe(ExportRequest("m", "zoo:tiny_cnn", "coreml", 64, 1, "gpu"))


def test_choose_exporter_routes_to_a_platform_that_can_lower() -> None:
    from orchestrator.export.lowering import choose_exporter

    assert choose_exporter("coreml", ["linux", "macos"]) == ("linux", "")
    assert choose_exporter("mps", ["linux"]) == (None, "needs a macOS exporter")
    assert choose_exporter("metal", ["linux", "macos"]) == ("macos", "")
    assert choose_exporter("xnnpack", [])[0] is None

"""A matrix spec's bounds are checked before any work: its size, list lengths and planned cell
count (multiplied, never expanded); duplicates and a matrix with no runnable cell are located
errors. Hypothesis explores the lengths; the issue's 52-million-cell spec runs under a memory cap."""

from __future__ import annotations

import math
import re
import resource
import subprocess
import sys

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.coordinator.planning import plan
from orchestrator.spec.bounds import MAX_ITEMS, MAX_SPEC_BYTES
from orchestrator.spec.matrix import ModelRef, loads_spec
from orchestrator.spec.yamlpos import SpecError
from orchestrator.store.models import Job, Run
from tests.fuzz.strategies import FUZZ

SOURCE = "bounds.yaml"


def spec_text(models: int, backends: list[str], devices: list[str], resolutions: int, batches: int,
              repeats: int) -> str:
    return yaml.safe_dump({
        "name": "bounds", "models": [{"name": f"m{i}", "source": "zoo:tiny_cnn"} for i in range(models)],
        "backends": backends, "devices": devices,
        "parameters": {"input_resolution": list(range(16, 16 + resolutions)),
                       "batch_size": list(range(1, 1 + batches)), "repeats": repeats},
    })


@FUZZ
@given(st.integers(1, 40), st.sampled_from([["xnnpack"], ["xnnpack", "xnnpack-int8"]]),
       st.sampled_from([["host-cpu"], ["host-cpu", "A15"]]), st.integers(1, 70), st.integers(1, 70),
       st.integers(1, 100), st.integers(1, 20_000))
def test_the_cell_count_is_checked_before_the_cells_exist(models: int, backends: list[str], devices: list[str],
                                                          resolutions: int, batches: int, repeats: int,
                                                          limit: int) -> None:
    text = spec_text(models, backends, devices, resolutions, batches, repeats)
    cells = models * len(backends) * len(devices) * resolutions * batches * repeats
    try:
        spec = loads_spec(text, SOURCE, max_cells=limit)
    except SpecError as exc:
        if resolutions > 64 or batches > 64:
            assert re.search(r"parameters\.(input_resolution|batch_size): \d+ entries, over the limit of 64", str(exc))
        else:
            assert cells > limit, str(exc)
            assert f"plans {cells:,} cells" in str(exc) and f"limit of {limit:,}" in str(exc)
        return
    assert cells <= limit and resolutions <= 64 and batches <= 64
    assert len(plan(spec).cells) == cells  # the arithmetic is the planner's count


@FUZZ
@given(st.sampled_from(sorted(MAX_ITEMS)), st.integers(0, 3))
def test_a_list_over_its_limit_is_refused_by_length(loc: tuple[str, ...], extra: int) -> None:
    doc = yaml.safe_load(spec_text(1, ["xnnpack"], ["host-cpu"], 1, 1, 1))
    parent = doc
    for key in loc[:-1]:
        parent = parent[key]
    item = parent[loc[-1]][0] if parent.get(loc[-1]) else {"reason": "r"}
    parent[loc[-1]] = [item.copy() if isinstance(item, dict) else item for _ in range(MAX_ITEMS[loc] + 1 + extra)]
    with pytest.raises(SpecError, match=rf"^{SOURCE}:\d+: {re.escape('.'.join(loc))}: [\d,]+ entries, over the limit"):
        loads_spec(yaml.safe_dump(doc), SOURCE)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_the_issues_52_million_cell_spec_is_refused_within_a_small_memory_cap() -> None:
    # 10 KB: 64 models x 2 backends x 64 resolutions x 64 batch sizes x 100 repeats on host-cpu
    text = spec_text(64, ["xnnpack", "xnnpack-int8"], ["host-cpu"], 64, 64, 100)
    text = text.replace("name: m", "name: model-of-the-big-matrix-")
    assert len(text) < 12_000, len(text)  # the issue's spec was 10 KB
    code = ("import sys, resource\nfrom orchestrator.spec.matrix import loads_spec\n"
            "from orchestrator.spec.yamlpos import SpecError\ntry:\n    loads_spec(sys.stdin.read(), 'big.yaml')\n"
            "except SpecError as e:\n    print(e)\n"
            "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True, timeout=60,
                         preexec_fn=_limit_memory)
    assert out.returncode == 0, out.stderr[-800:]
    assert f"plans {math.prod([64, 2, 64, 64, 100]):,} cells" in out.stdout, out.stdout
    assert out.stdout.startswith("big.yaml:1: ")


def test_a_spec_over_the_size_limit_is_refused_unparsed(tmp_path) -> None:
    from orchestrator.spec.matrix import load_spec

    path = tmp_path / "huge.yaml"
    path.write_text("name: x\nmodels:\n" + "  - m\n" * (MAX_SPEC_BYTES // 6 + 10))
    with pytest.raises(SpecError, match=r"huge\.yaml:1: spec is [\d,]+ bytes, over the limit"):
        load_spec(path)
    with pytest.raises(SpecError, match=r"^s\.yaml:1: document is [\d,]+ characters"):
        loads_spec(path.read_text(), "s.yaml")


BASE = "name: t\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("name: a\nname: b\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n",
     r"^s\.yaml:2: name: duplicate key 'name' \(first at line 1\)"),
    (BASE + "parameters:\n  repeats: 1\n  repeats: 2\n",
     r"^s\.yaml:7: parameters\.repeats: duplicate key 'repeats' \(first at line 6\)"),
    ("name: t\nmodels:\n  - tiny_cnn\n  - mobilenet_v3_small\n  - tiny_cnn\nbackends: [xnnpack]\ndevices: [host-cpu]\n",
     r"^s\.yaml:5: models\[2\]: model 'tiny_cnn' is listed twice \(first at line 3\)"),
    ("name: t\nmodels: [tiny_cnn]\nbackends:\n  - xnnpack\n  - XNNPACK\ndevices: [host-cpu]\n",
     r"^s\.yaml:5: backends\[1\]: backend 'xnnpack' is listed twice"),
    ("name: t\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices:\n  - A15\n  - a15\n",
     r"^s\.yaml:6: devices\[1\]: device 'A15' is listed twice"),
    ("name: t\nmodels: [tiny_cnn]\nbackends: [coreml, mps]\ndevices: [host-cpu]\n",
     r"^s\.yaml:1: <document>: the matrix plans no runnable job\n"
     r"s\.yaml:3: backends\[0\]: coreml cannot run on host-cpu \(devices\[0\], line 4\)\n"
     r"s\.yaml:3: backends\[1\]: mps cannot run on host-cpu"),
    (BASE + "disabled:\n  - {backend: xnnpack, reason: broken}\n",
     r"the matrix plans no runnable job\ns\.yaml:\d+: disabled: every xnnpack cell on host-cpu is disabled"),
    (f"name: t\nmodels: [{{name: {'x' * 201}}}]\nbackends: [xnnpack]\ndevices: [host-cpu]\n",
     r"^s\.yaml:2: models\[0\]\.name: String should have at most 200 characters"),
    ("name: t\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [A15 "
     + " ".join(f"label=abcdefghij{i}" for i in range(15)) + "]\n",
     r"^s\.yaml:4: devices\[0\]: .*over 200 characters"),
])
def test_dishonest_specs_are_located_errors(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        loads_spec(text, "s.yaml")
    assert re.search(expected, str(info.value)), str(info.value)


def test_text_limits_are_the_database_columns() -> None:
    def column(model: type, name: str) -> int:
        return int(model.__table__.c[name].type.length)  # type: ignore[attr-defined]

    def field(model: type, name: str) -> int:
        return int(next(m.max_length for m in model.model_fields[name].metadata if hasattr(m, "max_length")))

    from orchestrator.spec.matrix import MatrixSpec

    assert field(ModelRef, "name") == column(Job, "model")
    assert field(MatrixSpec, "name") == column(Run, "name")
    assert column(Job, "device_selector") == 200


def test_the_cli_refuses_a_spec_with_no_runnable_job(tmp_path) -> None:
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    path = tmp_path / "coreml-host.yaml"
    path.write_text("name: t\nmodels: [tiny_cnn]\nbackends: [coreml]\ndevices: [host-cpu]\n")
    result = CliRunner().invoke(app, ["submit", str(path)])
    assert result.exit_code == 2, result.output
    assert "coreml cannot run on host-cpu" in result.output

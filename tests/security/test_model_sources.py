"""No spec makes the coordinator or the API run code: ``import:`` sources outside the registered
model packages are spec errors (checked by string, never imported), through the validator,
the CLI and the API; a registered package's model is keyed by its package's bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.api import auth
from orchestrator.api.app import create_app
from orchestrator.spec.matrix import loads_spec
from orchestrator.spec.yamlpos import SpecError
from orchestrator.store.db import session
from orchestrator.store.models import Run
from tests.security.model_code import TINY

HOSTILE = ["import:os:abort", "import:os:system", "import:sys:exit", "import:no_such_module:f",
           "import:bf_side_effect:make", "import:bf_trusted_models_evil:make"]
# importing this module would leave a file behind: the proof that nothing imported it
SIDE_EFFECT = """
import os
open(os.environ["BF_SIDE_EFFECT"], "w").write("imported")


def make():
    open(os.environ["BF_SIDE_EFFECT"], "w").write("called")
"""
TRUSTED = """
import os
import sys

import torch
from torch import nn

""" + TINY + """

def exits():
    sys.exit(3)
"""


def spec(source: str, name: str = "m") -> str:
    return (f"name: hostile\nmodels:\n  - name: {name}\n    source: '{source}'\nbackends: [xnnpack]\n"
            "devices: [host-cpu]\nparameters: {input_resolution: [32], warmup: 1, iterations: 3, timeout_s: 60}\n")


@pytest.fixture
def packages(rel_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A side-effect module on the path (never registered) and a registered package, for this
    process and (through ``rel_env``) its children."""
    code = tmp_path / "code"
    (code / "bf_trusted_models").mkdir(parents=True)
    (code / "bf_trusted_models" / "__init__.py").write_text(textwrap.dedent(TRUSTED))
    (code / "bf_side_effect.py").write_text(textwrap.dedent(SIDE_EFFECT))
    marker = tmp_path / "side-effect"
    path = os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])
    for k, v in {"BF_SIDE_EFFECT": str(marker), "BENCHFARM_MODEL_PACKAGES": "bf_trusted_models",
                 "PYTHONPATH": path}.items():
        monkeypatch.setenv(k, v)
        rel_env[k] = v
    monkeypatch.syspath_prepend(str(code))
    yield marker
    assert not marker.exists(), "a hostile source was imported"


@pytest.mark.parametrize("source", HOSTILE)
def test_unregistered_import_source_is_a_spec_error_naming_the_field(packages: Path, source: str) -> None:
    before = set(sys.modules)
    with pytest.raises(SpecError) as err:
        loads_spec(spec(source), "hostile.yaml")
    assert err.value.problems == [err.value.problems[0]]
    assert err.value.problems[0].startswith("hostile.yaml:4: models[0].source: ")
    assert "registered model package" in str(err.value) or "not a dotted" in str(err.value)
    assert {m for m in set(sys.modules) - before if "side_effect" in m or "no_such" in m} == set()


def test_cli_submit_refuses_them_with_file_line_and_runs_nothing(rel_env: dict[str, str], packages: Path,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "hostile.yaml"  # every hostile source in one spec: one line per problem
    models = "".join(f"  - {{name: m{i}, source: '{src}'}}\n" for i, src in enumerate(HOSTILE))
    path.write_text(spec(HOSTILE[0]).split("models:")[0] + "models:\n" + models
                    + "backends: [xnnpack]\ndevices: [host-cpu]\n")
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "submit", str(path)], env=rel_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    for i in range(len(HOSTILE)):
        assert f"{path}:{3 + i}: models[{i}].source:" in out.stderr, out.stderr
    with session() as s:
        assert s.scalars(select(Run)).all() == []


def test_api_refuses_them_with_422_and_keeps_answering(rel_env: dict[str, str], packages: Path) -> None:
    headers = {"Authorization": f"Bearer {auth.create_token('hostile')}"}
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        for source in HOSTILE:
            r = client.post("/runs", json={"spec": spec(source)}, headers=headers)
            assert r.status_code == 422, r.text
            assert "models[0].source" in r.json()["detail"]
        assert client.get("/health").status_code == 200
    with session() as s:
        assert s.scalars(select(Run)).all() == []

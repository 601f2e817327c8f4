"""``schemathesis run --checks all`` against a real ``benchfarm api`` process: not only no 5xx,
but every status code, header, content type and body as the OpenAPI document says (undocumented
401/403/404/413, a 422 whose shape differs from the schema, a wrong ``Allow`` on a 405, a
schema-violating request accepted). Bounded: few examples per operation, deterministic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.api import auth
from tests.api.fixtures import svc_env  # noqa: F401
from tests.api.rawhttp import api_process, server_env

pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")
CONFIG = Path(__file__).with_name("schemathesis.toml")  # one stated exception: see the file


def test_schemathesis_checks_all_finds_nothing(svc_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    token = auth.create_token("conformance", ["admin"])
    with api_process(server_env(svc_env), tmp_path / "api.log") as (port, _proc):
        out = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
             f"http://127.0.0.1:{port}/openapi.json", "--checks", "all", "--max-examples", "5",
             "--phases", "examples,coverage,fuzzing", "--generation-deterministic", "--no-color",
             "--header", f"Authorization: Bearer {token}", "--request-timeout", "30",
             "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, timeout=240, env=server_env(svc_env), cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "17/17" in out.stdout or "Tested:" in out.stdout, out.stdout[-2000:]

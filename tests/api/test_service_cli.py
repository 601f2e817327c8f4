"""``benchfarm tokens …`` and ``benchfarm api`` (a real uvicorn process), and simulated labels."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from orchestrator.api.app import create_app
from orchestrator.api.auth import verify_token
from orchestrator.cli.service import tokens_app
from orchestrator.store.db import session
from tests.conftest import wait_until
from tests.reports.factory import add_cell, add_run

API = "import typer; from orchestrator.cli.service import api_command; typer.run(api_command)"


def test_tokens_create_list_revoke(svc_env: dict[str, str]) -> None:
    runner = CliRunner()
    out = runner.invoke(tokens_app, ["create", "ci-bot"])
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    assert verify_token(token) == "ci-bot"
    assert runner.invoke(tokens_app, ["create", "ci-bot"]).exit_code == 2
    listed = runner.invoke(tokens_app, ["list"])
    assert "ci-bot" in listed.output and token.split("_", 2)[2] not in listed.output
    assert runner.invoke(tokens_app, ["revoke", "ci-bot"]).exit_code == 0
    assert verify_token(token) is None
    assert runner.invoke(tokens_app, ["revoke", "ci-bot"]).exit_code == 1


def test_results_carry_simulated(svc_env: dict[str, str]) -> None:
    with session() as s:
        run = add_run(s)
        add_cell(s, run, "mobilenet_v3_small", "coreml", "A17-Pro", simulated=True)
        add_cell(s, run, "mobilenet_v3_small", "xnnpack", "host-cpu", seed=1)
        run_id = run.id
    with TestClient(create_app()) as c:
        got = c.get(f"/runs/{run_id}").json()
        matrix = c.get(f"/runs/{run_id}/matrix").json()
        listed = c.get("/runs").json()
    assert got["simulated"] is True and listed[0]["simulated"] is True
    assert {(j["device_class"], j["simulated"], j["result"]["simulated"]) for j in got["jobs"]} == {
        ("A17-Pro", True, True), ("host-cpu", False, False)}
    assert {(c["device_class"], c["simulated"]) for c in matrix["cells"]} == {("A17-Pro", True), ("host-cpu", False)}
    assert matrix["simulated"] is True and "simulated" in matrix["markdown"]


def test_chunked_upload_over_limit_is_413(svc_env: dict[str, str]) -> None:
    from orchestrator.api.auth import create_token

    token = create_token("chunky")

    def chunks():  # no Content-Length: the guard must count while the body streams
        for _ in range(40):
            yield b"x" * 65536

    with TestClient(create_app(max_upload_bytes=10)) as c:
        r = c.post("/runs/pte", content=chunks(), headers={"Authorization": f"Bearer {token}",
                                                           "content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413, r.text


def test_api_command_serves_http(svc_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(tmp_path / "api.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", API, "--port", str(port)], env=svc_env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def health() -> dict | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except httpx.HTTPError:
                return None

        assert wait_until(health, 60, "the API to answer") == {"status": "ok", "redis": "ok", "database": "ok"}
        assert httpx.post(f"http://127.0.0.1:{port}/runs", json={"spec": "x"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(20)

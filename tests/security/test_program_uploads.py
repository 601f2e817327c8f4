"""No spec makes the coordinator read its own files: a ``pte:<path>`` through the API is a 422
with nothing read or stored; programs arrive by upload (``POST /programs``, named by digest);
a CLI reads only its user's local file and stores it by digest; ``GET /artifacts`` serves
only the store's artifacts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.api import auth
from orchestrator.api.app import create_app
from orchestrator.store.db import session
from orchestrator.store.models import Job, Run

# bytes 4..8 are an ExecuTorch identifier: the file a hostile spec would have the server copy
PTE = b"\x1c\x00\x00\x00ET12" + b"\x00" * 256


def spec(source: str) -> str:
    return (f"name: files\nmodels:\n  - name: m\n    source: '{source}'\nbackends: [xnnpack]\n"
            "devices: [host-cpu]\nparameters: {iterations: 3, warmup: 1}\n")


def _stored_bytes(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in root.rglob("*") if p.is_file()]


def test_api_refuses_server_paths_reads_nothing_and_takes_uploads(rel_env: dict[str, str], tmp_path: Path) -> None:
    secret = tmp_path / "server-secret.pte"  # on the coordinator's disk, program-shaped
    secret.write_bytes(PTE + b"the coordinator's own file")
    store = Path(rel_env["BENCHFARM_ARTIFACTS"])
    headers = {"Authorization": f"Bearer {auth.create_token('files')}"}
    with TestClient(create_app(max_upload_bytes=4096), raise_server_exceptions=False) as client:
        for source in (f"pte:{secret}", "pte:/etc/passwd", "pte:/etc/passwd.pte", "pte:../../etc/shadow.pte",
                       "pte:sha256:../../etc/passwd", "pte:sha256:" + "A" * 64):
            r = client.post("/runs", json={"spec": spec(source)}, headers=headers)
            assert r.status_code == 422, (source, r.text)
            assert "models[0].source" in r.json()["detail"], r.text
        assert not any(secret.read_bytes() in b for b in _stored_bytes(store))
        # a digest nobody uploaded: 422, no run
        r = client.post("/runs", json={"spec": spec("pte:sha256:" + "0" * 64)}, headers=headers)
        assert r.status_code == 422 and "no such uploaded program" in r.json()["detail"], r.text
        # the way in: upload, then name the digest
        assert client.post("/programs", files={"file": ("m.pte", PTE)}).status_code == 401
        up = client.post("/programs", files={"file": ("m.pte", PTE)}, headers=headers)
        assert up.status_code == 201, up.text
        assert up.json()["source"] == f"pte:sha256:{up.json()['sha256']}" and up.json()["size_bytes"] == len(PTE)
        bad = client.post("/programs", files={"file": ("m.pte", b"#!/bin/sh\nnot a program")}, headers=headers)
        assert bad.status_code == 422 and "not an ExecuTorch program" in bad.json()["detail"]
        r = client.post("/runs", json={"spec": spec(up.json()["source"])}, headers=headers)
        assert r.status_code == 201, r.text
        with session() as s:
            key = s.scalars(select(Job.artifact_key).where(Job.run_id == r.json()["id"])).one()
        # GET /artifacts serves store artifacts by key only, never the upload area or a path
        for path in ("/artifacts/../programs/" + up.json()["sha256"], "/artifacts/" + up.json()["sha256"],
                     "/artifacts/%2e%2e%2fprograms", "/artifacts/" + "0" * 64):
            assert client.get(path, headers=headers).status_code in (404, 422), path
        got = client.get(f"/artifacts/{key}", headers=headers)
        assert got.status_code == 200 and got.content == PTE
    with session() as s:
        assert len(s.scalars(select(Run)).all()) == 1


def test_cli_reads_its_users_file_and_submits_it_by_digest(rel_env: dict[str, str], tmp_path: Path) -> None:
    mine = tmp_path / "mine.pte"
    mine.write_bytes(PTE)
    ok, passwd = tmp_path / "ok.yaml", tmp_path / "passwd.yaml"
    ok.write_text(spec(f"pte:{mine}"))
    passwd.write_text(spec("pte:/etc/passwd"))
    cli = [sys.executable, "-m", "orchestrator.cli.main", "submit"]
    out = subprocess.run([*cli, str(passwd)], env=rel_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and f"{passwd}:4: models[0].source:" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([*cli, str(ok)], env=rel_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    with session() as s:
        run = s.scalars(select(Run)).one()
        assert str(mine) not in run.spec_yaml and "pte:sha256:" in run.spec_yaml
        assert [j.state for j in run.jobs] == ["waiting-for-device"]

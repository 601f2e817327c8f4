"""The HTTP API over real Redis (DB 8) and a real SQLite file, through FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.api import auth
from orchestrator.api.app import create_app
from orchestrator.store.db import session
from orchestrator.store.models import ApiToken, Run

SPEC = """name: api-test
models: [tiny_cnn]
backends: [xnnpack]
devices: [host-cpu]
parameters:
  iterations: 5
  warmup: 1
"""
# An ExecuTorch flatbuffer identifier at bytes 4..8 is all the API checks before storing.
PTE = b"\x1c\x00\x00\x00ET12" + b"\x00" * 512


@pytest.fixture
def client(svc_env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(max_upload_bytes=4096)) as c:
        yield c


@pytest.fixture
def token(svc_env: dict[str, str]) -> str:
    return auth.create_token("ci")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_writes_need_a_valid_token(client: TestClient, token: str) -> None:
    body = {"spec": SPEC}
    r = client.post("/runs", json=body)
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.post("/runs", json=body, headers=bearer(token[:-1] + "x")).status_code == 403
    assert client.post("/runs", json=body, headers=bearer("not-a-token")).status_code == 403
    assert client.delete("/runs/abc").status_code == 401
    assert client.post("/runs/pte", files={"file": ("m.pte", PTE)}).status_code == 401
    assert auth.revoke_token("ci")
    assert client.post("/runs", json=body, headers=bearer(token)).status_code == 403
    assert client.get("/runs").status_code == 200  # reads are open


def test_token_is_stored_hashed(svc_env: dict[str, str], tmp_path: Path) -> None:
    token = auth.create_token("hash-check")
    secret = token.split("_", 2)[2]  # bf_<id>_<secret>; the urlsafe secret may hold "_" itself
    with session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == "hash-check"))
        stored = " ".join(str(v) for v in (row.id, row.name, row.salt, row.secret_sha256))
    assert secret not in stored and token not in stored
    if "DATABASE_URL" not in svc_env:  # SQLite: not even a stray page of the file holds the secret
        assert Path(svc_env["BENCHFARM_DB"]).read_bytes().find(secret.encode()) == -1
    assert auth.verify_token(token) == "hash-check"
    with pytest.raises(auth.TokenError, match="already exists"):
        auth.create_token("hash-check")


def test_bad_spec_is_422_naming_the_line(client: TestClient, token: str) -> None:
    r = client.post("/runs", json={"spec": SPEC.replace("xnnpack", "xnnpak"), "source": "nightly.yaml"},
                    headers=bearer(token))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("nightly.yaml:3: backends[0]: unknown backend 'xnnpak'")
    r = client.post("/runs", json={"spec": "name: x\nmodels: [tiny_cnn\n"}, headers=bearer(token))
    assert r.status_code == 422 and "invalid YAML" in r.json()["detail"] and "spec.yaml:" in r.json()["detail"]
    r = client.post("/runs", json={"spec": SPEC, "trigger": "hourly"}, headers=bearer(token))
    assert r.status_code == 422 and "trigger" in r.text
    with session() as s:
        assert s.scalars(select(Run)).all() == []  # nothing half-written


def test_unknown_run_is_404(client: TestClient, token: str) -> None:
    for r in (client.get("/runs/nope"), client.get("/runs/nope/matrix"),
              client.delete("/runs/nope", headers=bearer(token))):
        assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_run_lifecycle_submit_get_cancel(client: TestClient, token: str) -> None:
    meta = {"repo": "acme/app", "pr": 7, "branch": "feature"}
    r = client.post("/runs", json={"spec": SPEC, "trigger": "pr", "meta": meta}, headers=bearer(token))
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    assert r.json()["jobs"] == 1
    got = client.get(f"/runs/{run_id}").json()
    assert got["trigger"] == "pr" and got["requested_by"] == "ci" and got["meta"] == meta
    assert got["jobs"][0]["state"] in ("exporting", "waiting-for-device")
    assert got["jobs"][0]["simulated"] is None and got["simulated"] is False
    listed = client.get("/runs", params={"trigger": "pr"}).json()
    assert [x["id"] for x in listed] == [run_id] and listed[0]["simulated"] is False
    matrix = client.get(f"/runs/{run_id}/matrix").json()
    assert matrix["cells"][0]["model"] == "tiny_cnn" and matrix["cells"][0]["simulated"] is False
    assert "Host CPU" in matrix["markdown"] or "host" in matrix["markdown"].lower()
    r = client.delete(f"/runs/{run_id}", headers=bearer(token))
    assert r.status_code == 200 and r.json() == {"id": run_id, "cancelled_jobs": 1, "status": "cancelled"}
    assert client.get(f"/runs/{run_id}").json()["jobs"][0]["state"] == "cancelled"


def test_upload_limit_is_413(client: TestClient, token: str) -> None:
    big = PTE + b"\x00" * 5000
    r = client.post("/runs/pte", files={"file": ("big.pte", big)},
                    data={"backends": "xnnpack", "devices": "host-cpu"}, headers=bearer(token))
    assert r.status_code == 413 and "BENCHFARM_MAX_UPLOAD_BYTES" in r.json()["detail"]


def test_upload_body_over_limit_is_refused_before_parsing(svc_env: dict[str, str], token: str) -> None:
    with TestClient(create_app(max_upload_bytes=10)) as c:
        r = c.post("/runs/pte", content=b"x" * (2 * 1024**2), headers={**bearer(token),
                   "content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413


def test_upload_names_are_labels_not_paths(client: TestClient, token: str, svc_env: dict[str, str],
                                            tmp_path: Path) -> None:
    r = client.post("/runs/pte", files={"file": ("../../../../tmp/evil.pte", PTE)},
                    data={"backends": "xnnpack", "devices": "host-cpu", "parameters": "{iterations: 5}"},
                    headers=bearer(token))
    assert r.status_code == 201, r.text
    run = client.get(f"/runs/{r.json()['id']}").json()
    assert run["jobs"][0]["model"] == "evil" and run["jobs"][0]["state"] == "waiting-for-device"
    assert not Path("/tmp/evil.pte").exists()
    stored = [p for p in Path(svc_env["BENCHFARM_ARTIFACTS"]).rglob("*.pte")]
    assert len(stored) == 1 and stored[0].read_bytes() == PTE
    assert stored[0].name != "evil.pte"  # content-addressed
    for name, why in (("../../etc/passwd", ".pte"), ("..\\..\\.pte", "no usable name")):
        r = client.post("/runs/pte", files={"file": (name, PTE)}, data={"backends": "xnnpack",
                        "devices": "host-cpu"}, headers=bearer(token))
        assert r.status_code == 422 and why in r.json()["detail"]
    r = client.post("/runs/pte", files={"file": ("m.pte", PTE)}, data={"backends": "xnnpack", "devices": "host-cpu",
                    "model": "../.."}, headers=bearer(token))
    assert r.status_code == 422 and r.json()["detail"].startswith("model:")
    r = client.post("/runs/pte", files={"file": ("m.pte", b"not a program")},
                    data={"backends": "xnnpack", "devices": "host-cpu"}, headers=bearer(token))
    assert r.status_code == 422 and "not an ExecuTorch program" in r.json()["detail"]
    r = client.post("/runs/pte", files={"file": ("m.pte", PTE)},
                    data={"backends": "xnnpak", "devices": "host-cpu"}, headers=bearer(token))
    assert r.status_code == 422 and "unknown backend 'xnnpak'" in r.json()["detail"]


def test_health_devices_capacity_openapi(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "redis": "ok", "database": "ok"}
    client.app.state.fleet.register("vdev1", {"device_class": "A17-Pro", "simulated": "1"})
    devices = client.get("/devices").json()
    assert [(d["id"], d["simulated"]) for d in devices] == [("vdev1", True)]
    cap = client.get("/capacity")
    try:
        from orchestrator.capacity.report import capacity_report  # noqa: F401

        assert cap.status_code == 200, cap.text
    except ImportError:
        assert cap.status_code == 503 and "capacity" in cap.json()["detail"]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "benchfarm_" in metrics.text
    assert client.get("/ui").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/runs", "/runs/pte", "/runs/{run_id}", "/runs/{run_id}/matrix", "/devices", "/health"} <= set(paths)

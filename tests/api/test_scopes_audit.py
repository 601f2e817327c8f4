"""Token scopes, run ownership and the audit trail, over real Redis (DB 8) and a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from orchestrator.api import auth
from orchestrator.api.app import create_app
from orchestrator.cli.main import app as cli
from orchestrator.store import migrations
from orchestrator.store.db import session
from orchestrator.store.models import AuditEvent, Run

SPEC = "name: scoped\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\nparameters: {iterations: 5}\n"


@pytest.fixture
def client(svc_env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _submit(client: TestClient, token: str) -> str:
    r = client.post("/runs", json={"spec": SPEC}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_scopes_and_ownership(client: TestClient) -> None:
    alice = auth.create_token("alice-ci", ["submit", "cancel-own"], principal="alice")
    alice_laptop = auth.create_token("alice-laptop", ["cancel-own"], principal="alice")
    bob = auth.create_token("bob", ["submit", "cancel-own"])
    reader = auth.create_token("agent", ["read"])
    admin = auth.create_token("ops", ["admin"])

    r = client.post("/runs", json={"spec": SPEC}, headers=bearer(reader))
    assert r.status_code == 403 and "'submit' scope" in r.json()["detail"]
    run_id = _submit(client, alice)
    got = client.get(f"/runs/{run_id}").json()
    assert got["owner"] == "alice" and got["requested_by"] == "alice"
    # requested_by is a label the client may set; the owner is always the token's principal
    spoofed = client.post("/runs", json={"spec": SPEC, "requested_by": "bob"}, headers=bearer(alice)).json()["id"]
    assert client.get(f"/runs/{spoofed}").json()["owner"] == "alice"

    r = client.delete(f"/runs/{run_id}", headers=bearer(bob))
    assert r.status_code == 403 and "not yours" in r.json()["detail"] and "admin" in r.json()["detail"]
    assert client.delete(f"/runs/{run_id}", headers=bearer(reader)).status_code == 403  # no cancel scope
    assert client.get(f"/runs/{run_id}").json()["status"] != "cancelled"
    r = client.delete(f"/runs/{run_id}", headers=bearer(alice_laptop))  # same principal, another token
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.delete(f"/runs/{spoofed}", headers=bearer(admin)).status_code == 200  # admin: any run
    assert client.delete("/runs/nope", headers=bearer(admin)).status_code == 404
    # a program download needs read (agents); submit alone is not enough, admin is
    assert client.get(f"/artifacts/{'a' * 64}", headers=bearer(bob)).status_code == 403
    assert client.get(f"/artifacts/{'a' * 64}", headers=bearer(reader)).status_code == 404
    assert client.get(f"/artifacts/{'a' * 64}", headers=bearer(admin)).status_code == 404


def test_every_write_is_audited_in_its_transaction_and_no_secret_is(client: TestClient,
                                                                   svc_env: dict[str, str]) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["tokens", "create", "carol", "--scope", "submit,cancel-own"])
    assert out.exit_code == 0, out.output
    carol = out.output.strip().splitlines()[-1]
    admin = auth.create_token("auditor", ["admin"])
    run_id = _submit(client, carol)
    assert client.delete(f"/runs/{run_id}", headers=bearer(carol)).status_code == 200
    assert client.post("/runs", json={"spec": "name: x\nmodels: [nope]\n"}, headers=bearer(carol)).status_code == 422
    assert runner.invoke(cli, ["tokens", "revoke", "carol"]).exit_code == 0

    assert client.get("/audit", headers=bearer(carol)).status_code == 403  # revoked (and never admin)
    assert client.get("/audit", headers=bearer(auth.create_token("plain"))).status_code == 403
    trail = client.get("/audit", headers=bearer(admin)).json()
    actions = [(e["action"], e["actor"]) for e in reversed(trail)]
    assert actions[:2] == [("token.create", actions[0][1]), ("token.create", actions[1][1])]
    assert actions[0][1].startswith("cli:")
    assert [a for a in actions if a[0].startswith("run.")] == [("run.submit", "carol"), ("run.cancel", "carol")]
    # the 422 submission wrote nothing, so no audit row either; then "plain" was created
    assert [a[0] for a in actions[-2:]] == ["token.revoke", "token.create"]
    by_run = client.get("/audit", params={"run_id": run_id}, headers=bearer(admin)).json()
    assert {e["action"] for e in by_run} == {"run.submit", "run.cancel"}
    assert by_run[-1]["detail"]["jobs"] == 1 and by_run[-1]["token_id"] == carol.split("_")[1]

    cli_out = runner.invoke(cli, ["audit", "--json", "--action", "run.cancel"])
    assert cli_out.exit_code == 0, cli_out.output
    assert [(e["action"], e["run_id"]) for e in json.loads(cli_out.output)] == [("run.cancel", run_id)]
    assert "run.submit" in runner.invoke(cli, ["audit"]).output
    # bf_<id>_<secret>: the secret is urlsafe base64 and may itself hold "_" (the tail after the
    # last one can be a character or two, which any dump holds by chance)
    secrets = [t.split("_", 2)[2] for t in (carol, admin)]
    assert all(len(secret) >= 40 for secret in secrets)
    with session() as s:
        dumped = json.dumps([[getattr(e, c.key) for c in AuditEvent.__table__.columns]
                             for e in s.query(AuditEvent)], default=str)
    assert not any(secret in dumped for secret in secrets)


def test_tokens_cli_scopes(svc_env: dict[str, str]) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["tokens", "create", "x", "--scope", "root"])
    assert bad.exit_code == 2 and "unknown scope 'root'" in bad.output
    assert runner.invoke(cli, ["tokens", "create", "agent-1", "--scope", "read"]).exit_code == 0
    listed = runner.invoke(cli, ["tokens", "list"]).output
    assert "agent-1" in listed and "read" in listed
    assert [t.scopes for t in auth.list_tokens()] == [("read",)]


def test_existing_tokens_get_the_legacy_scopes_and_runs_no_owner(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    eng = create_engine(f"sqlite:///{db}")
    migrations.upgrade(eng, "0003")
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO api_tokens (id, name, salt, secret_sha256, created_at) "
                          "VALUES ('abcdefabcdef', 'old-ci', '00', 'ff', '2026-11-01 00:00:00')"))
        conn.execute(text("INSERT INTO runs (id, name, trigger, requested_by, priority, status, spec_yaml, "
                          "spec_source, created_at, finalized, summary, meta) VALUES ('r1', 'n', 'manual', "
                          "'old-ci', 5, 'running', '{}', '', '2026-11-01 00:00:00', 0, '{}', '{}')"))
    assert migrations.upgrade(eng) == ("0003", migrations.head())
    with session(f"sqlite:///{db}") as s:
        assert s.get(Run, "r1").owner == ""  # only an admin may cancel a run from before ownership
    with eng.connect() as conn:
        assert tuple(conn.execute(text("SELECT principal, scopes FROM api_tokens")).one()) == (
            "old-ci", "read submit cancel-own")
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
    eng.dispose()


def test_a_token_cell_quota_bounds_unfinished_work(client: TestClient) -> None:
    ci = auth.create_token("ci-quota", ["submit", "cancel-own"], principal="ci", max_cells=2)
    first, _second = _submit(client, ci), _submit(client, ci)  # one cell each: the quota is full
    r = client.post("/runs", json={"spec": SPEC}, headers=bearer(ci))
    assert r.status_code == 429 and r.headers["Retry-After"], r.text
    assert "plans 1 cells and 'ci' has 2 unfinished" in r.json()["detail"] and "--max-cells" in r.json()["detail"]
    # one spec over the quota is a spec error with its count, whatever is running
    three = SPEC.replace("[tiny_cnn]", "[tiny_cnn, mobilenet_v3_small, resnet18]")
    r = client.post("/runs", json={"spec": three}, headers=bearer(ci))
    assert r.status_code == 422 and "plans 3 cells" in r.json()["detail"], r.text
    assert f"max_cells of token {auth.list_tokens()[0].id}" in r.json()["detail"]
    # the quota is the principal's: other principals are not counted, finished runs free it
    assert _submit(client, auth.create_token("other", ["submit"]))
    assert client.delete(f"/runs/{first}", headers=bearer(ci)).status_code == 200
    assert _submit(client, ci)
    with session() as s:
        assert s.query(Run).filter(Run.owner == "ci").count() == 3  # the refused ones left nothing


def test_tokens_cli_max_cells(svc_env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["tokens", "create", "ci-1", "--max-cells", "500"]).exit_code == 0
    assert runner.invoke(cli, ["tokens", "create", "ci-2", "--max-cells", "0"]).exit_code == 2
    assert "500" in runner.invoke(cli, ["tokens", "list"]).output
    assert [t.max_cells for t in auth.list_tokens()] == [500]

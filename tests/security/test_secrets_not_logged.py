"""Secrets in the environment never reach the logs: a real job runs through a worker and
a host agent whose environment carries a GitHub token, a webhook secret, an SSH
passphrase and (with PostgreSQL) a password in DATABASE_URL; every log is then scanned."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from device_inventory.fleet import Fleet
from orchestrator.store.db import session
from orchestrator.store.models import Run
from tests.conftest import Procs, wait_until
from tests.core.test_orchestration_processes import available_hosts, finalized, spec, submit

PG = "postgresql+psycopg2://postgres:{pw}@127.0.0.1:5432/test"


def _postgres_with_password(pw: str) -> Iterator[str] | None:
    """A private PostgreSQL schema reached through a URL carrying a password (trust auth
    ignores it, but every process still holds it in its environment)."""
    from tests.api.fixtures import _postgres_schema

    try:
        with sa.create_engine(PG.format(pw=pw)).connect():
            pass
    except sa.exc.OperationalError:
        return None
    return _postgres_schema(PG.format(pw=pw))


@pytest.fixture
def secret_env(rel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    values = {"GITHUB_TOKEN": f"ghp_{secrets.token_hex(16)}",
              "BENCHFARM_WEBHOOK_URL": f"https://hooks.invalid/notify?key={secrets.token_hex(12)}",
              "BENCHFARM_SSH_PASSPHRASE": f"pass-{secrets.token_hex(8)}"}
    pw = f"pw{secrets.token_hex(10)}"
    schema = _postgres_with_password(pw)
    if schema is not None:
        values["DATABASE_URL"] = next(schema)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    yield {**rel_env, **values, "_secrets": "\n".join([*values.values(), pw] if schema else values.values())}
    if schema is not None:
        schema.close()


def test_a_job_with_secrets_in_the_environment_logs_none_of_them(secret_env: dict[str, str], tmp_path: Path) -> None:
    needles = [s for s in secret_env.pop("_secrets").splitlines() if s]
    # the webhook URL's key and the bare DB password are what must not leak, also inside URLs
    needles = [n.rsplit("=", 1)[-1] for n in needles if not n.startswith("postgresql")]
    # INFO: the task lines (with their arguments) are logs a secret must not reach either
    procs = Procs(dict(secret_env, BENCHFARM_TASK_LOG_LEVEL="INFO"), tmp_path)
    try:
        fleet = Fleet.from_url(secret_env["REDIS_URL"])
        procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
        procs.start("agent", "agent", "--driver", "host", "--name", "sec", "--lease-ttl", "10")
        wait_until(lambda: available_hosts(fleet), 90, "the host device")
        run_id = submit(fleet, spec("secrets", 1, 3), "pr")
        wait_until(lambda: finalized(run_id), 240, "the run")
        with session() as s:
            assert s.get(Run, run_id).status == "succeeded"
    finally:
        procs.stop_all()
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    assert "worker.log" in logs and "agent.log" in logs and "succeeded" in logs["worker.log"]
    for name, text in logs.items():
        for needle in needles:
            assert needle not in text, f"{name} contains a secret"

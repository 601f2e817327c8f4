"""Agents on other hosts fetch programs from the coordinator's API: over a real socket
(uvicorn), with a token, verified by sha256, cached atomically; and end to end, an agent
with an empty local store runs a job whose program only the coordinator has."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.api import auth
from orchestrator.api.app import create_app
from orchestrator.coordinator.submit import submit
from orchestrator.export.artifacts import ArtifactError, ArtifactStore, BadArtifactName
from orchestrator.export.remote import RemoteArtifactStore
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Result, Run
from tests.conftest import Procs, free_port, wait_until

KEY = "ab" * 32
PROGRAM = b"\x1c\x00\x00\x00ET12" + bytes(range(256)) * 40
GOLDEN = {"shape": [1, 10], "values": [0.1, -2.5, 3.25], "top1": 2}


@pytest.fixture
def api_url(svc_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, "the API server")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _finalized(run_id: str) -> bool:
    with session() as s:
        return bool(s.get(Run, run_id).finalized)


def test_a_program_is_downloaded_verified_and_cached(api_url: str, tmp_path: Path) -> None:
    ArtifactStore().put(KEY, PROGRAM, {"model": "m", "backend": "xnnpack"}, GOLDEN)
    remote = RemoteArtifactStore(api_url, auth.create_token("agent-1"), root=tmp_path / "cache")
    art = remote.get(KEY)
    assert art.path.read_bytes() == PROGRAM and art.path.is_relative_to(tmp_path / "cache")
    assert art.meta["model"] == "m" and art.meta["file_sha256"] == ArtifactStore().get(KEY).meta["file_sha256"]
    assert remote.golden(KEY) == GOLDEN
    # cached: served locally from now on, even with the coordinator's copy gone
    ArtifactStore().remove(KEY)
    assert remote.get(KEY).path.read_bytes() == PROGRAM


def test_no_token_wrong_token_unknown_key_corrupt_copy(api_url: str, tmp_path: Path) -> None:
    ArtifactStore().put(KEY, PROGRAM, {"model": "m"})
    for token, status in (("", "401"), ("bf_not-a-token", "403")):
        remote = RemoteArtifactStore(api_url, token, root=tmp_path / f"c{status}")
        with pytest.raises(ArtifactError, match=f"HTTP {status}"):
            remote.get(KEY)
        assert not remote.exists(KEY)  # nothing half-cached
    remote = RemoteArtifactStore(api_url, auth.create_token("agent-2"), root=tmp_path / "cache")
    with pytest.raises(ArtifactError, match="HTTP 404"):
        remote.get("cd" * 32)
    with pytest.raises(BadArtifactName):
        remote.get("../../etc/passwd")  # refused before any request is made
    server_copy = ArtifactStore().pte_path(KEY)
    server_copy.write_bytes(PROGRAM[:-1] + b"\x00")  # the coordinator's copy rots
    with pytest.raises(ArtifactError, match="HTTP 500.*corrupt"):
        remote.get(KEY)
    assert not remote.exists(KEY)


def test_an_agent_without_the_store_runs_a_job_from_the_api(svc_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    token = auth.create_token("remote-agent")
    coordinator = Procs(svc_env, tmp_path)
    remote_env = dict(svc_env, BENCHFARM_ARTIFACTS=str(tmp_path / "agent-cache"),
                      BENCHFARM_ARTIFACT_URL=f"http://127.0.0.1:{port}", BENCHFARM_API_TOKEN=token)
    agent = Procs(remote_env, tmp_path)
    fleet = Fleet.from_url(svc_env["REDIS_URL"])
    try:
        coordinator.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
        coordinator.start("api", "api", "--port", str(port))
        agent.start("agent", "agent", "--driver", "host", "--name", "far-away")
        wait_until(lambda: any(d.get("state") == "available" for d in fleet.devices()), 60, "the remote host device")
        text = ("name: remote\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n"
                "parameters: {input_resolution: [64], warmup: 1, iterations: 5, timeout_s: 120}\n")
        run_id, outbox = submit(loads_spec(text), text, fleet, trigger="manual")
        outbox.send()
        t0 = time.monotonic()
        wait_until(lambda: _finalized(run_id), 240, "the run")
    finally:
        agent.stop_all()
        coordinator.stop_all()
    with session() as s:
        run = s.get(Run, run_id)
        results = s.scalars(select(Result)).all()
        key = run.jobs[0].artifact_key
    assert run.status == "succeeded" and len(results) == 1, (run.summary, agent.log("agent")[-2000:])
    cached = ArtifactStore(tmp_path / "agent-cache").get(key)  # downloaded into the agent's own cache
    assert cached.meta["file_sha256"] == ArtifactStore().get(key).meta["file_sha256"]
    assert token not in agent.log("agent") + coordinator.log("api")  # the token is never logged
    print(f"\nremote agent: run finished {time.monotonic() - t0:.1f} s after submit")

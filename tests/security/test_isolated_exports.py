"""A registered package's model runs only in a confined child of the exporter: through a real
worker (Celery, Redis, SQLite), factories that abort, segfault, exit, hang, allocate without
bound fail their export with a reason naming the source and what happened; the worker keeps
serving; nothing half-written is left in the store; and a factory that reads its environment,
/proc/self/environ and its descriptors finds none of the worker's secrets or sockets.
"""

from __future__ import annotations

import json
import os
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_inventory.fleet import Fleet
from orchestrator.export.artifacts import ArtifactStore
from orchestrator.export.isolated import child_env
from orchestrator.export.recipe import artifact_key
from orchestrator.export.request import ExportRequest
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Job
from tests.conftest import Procs, register_model_packages, wait_until
from tests.core.test_orchestration_processes import submit
from tests.security.model_code import TINY

PACKAGE = "bf_confined_models"
TIMEOUT_S = 25  # the hang's export: a tiny model lowers in a few seconds even on a loaded host
MEMORY_MB = 3072  # a tiny model's lowering peaks near 1.1 GB of address space
MODELS = """
import ctypes
import json
import os
import sys
import time

import torch
from torch import nn

SEEN = {seen!r}

""" + TINY + """

def segfaults():
    ctypes.string_at(0)


def exits():
    sys.exit(3)


def hangs():
    while True:
        time.sleep(1)


def hogs():
    hoard = []
    while True:
        hoard.append(bytearray(64 * 2**20))


def peeks():
    fds = {{}}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{{fd}}")
        except OSError:
            pass
    with open("/proc/self/environ", "rb") as f:
        proc_environ = f.read().decode(errors="replace")
    with open(SEEN, "w") as f:
        json.dump({{"environ": dict(os.environ), "proc_environ": proc_environ, "fds": fds, "pid": os.getpid()}}, f)
    return Tiny()
"""
FAILING = {  # factory -> what the job's reason must say
    "aborts": "killed by SIGABRT",
    "segfaults": "killed by SIGSEGV",
    "exits": "sys.exit(3); the export process exited with status 3",
    "hangs": f"did not finish within {TIMEOUT_S} s (BENCHFARM_EXPORT_TIMEOUT_S); its process was killed",
    "hogs": f"out of memory: MemoryError; its memory limit is {MEMORY_MB} MB",
}


def spec(name: str, factories: list[str]) -> str:
    models = "".join(f"  - {{name: {f}, source: 'import:{PACKAGE}:{f}'}}\n" for f in factories)
    return (f"name: {name}\nmodels:\n{models}backends: [xnnpack]\ndevices: [host-cpu]\n"
            "parameters: {input_resolution: [32], warmup: 1, iterations: 3, timeout_s: 60}\n")


@pytest.fixture
def confined(rel_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The registered package on this process's and the worker's path, secrets in the worker's env."""
    code = tmp_path / "code"
    (code / PACKAGE).mkdir(parents=True)
    (code / PACKAGE / "__init__.py").write_text(textwrap.dedent(MODELS.format(seen=str(tmp_path / "seen.json"))))
    monkeypatch.syspath_prepend(str(code))  # this process keys the artifacts (by the files, no import)
    register_model_packages(rel_env, monkeypatch, PACKAGE)
    values = {"BENCHFARM_API_TOKEN": f"bf_{secrets.token_hex(16)}", "GITHUB_TOKEN": f"ghp_{secrets.token_hex(16)}",
              "AWS_SECRET_ACCESS_KEY": secrets.token_hex(20), "AWS_ACCESS_KEY_ID": f"AKIA{secrets.token_hex(8)}",
              "ORDERS_DB_PASSWORD": secrets.token_hex(12), "BENCHFARM_WEBHOOK_SECRET": secrets.token_hex(12)}
    yield {**rel_env, **values, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]),
           "BENCHFARM_EXPORT_TIMEOUT_S": str(TIMEOUT_S), "BENCHFARM_EXPORT_MEMORY_MB": str(MEMORY_MB)}


def _jobs(run_id: str) -> dict[str, Job]:
    with session() as s:
        return {j.model: j for j in s.query(Job).filter(Job.run_id == run_id)}


def _settled(run_id: str) -> dict[str, Job] | None:
    jobs = _jobs(run_id)
    return jobs if jobs and all(j.state not in ("queued", "exporting") for j in jobs.values()) else None


def test_hostile_factories_fail_their_export_and_the_worker_keeps_serving(confined: dict[str, str],
                                                                           tmp_path: Path) -> None:
    env = confined
    secret_values = [env[k] for k in ("BENCHFARM_API_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
                                      "AWS_ACCESS_KEY_ID", "ORDERS_DB_PASSWORD", "BENCHFARM_WEBHOOK_SECRET")]
    store = ArtifactStore(Path(env["BENCHFARM_ARTIFACTS"]))
    fleet = Fleet.from_url(env["REDIS_URL"])
    with Procs(env, tmp_path) as procs:
        worker = procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
        hostile = submit(fleet, spec("hostile", list(FAILING)), "manual")
        jobs = wait_until(lambda: _settled(hostile), TIMEOUT_S + 180, "the hostile exports")
        assert isinstance(jobs, dict)
        for factory, expected in FAILING.items():
            job = jobs[factory]
            assert job.state == "failed", (factory, job.state, job.reason)
            assert f"import:{PACKAGE}:{factory}" in job.reason and expected in job.reason, (factory, job.reason)
            key = artifact_key(ExportRequest(factory, f"import:{PACKAGE}:{factory}", "xnnpack", 32))
            assert not store.exists(key) and not list(store.root.glob(f"*/{key}*")), factory  # nothing half-written
        assert not list(store.root.glob("*/.tmp-*"))
        assert worker.poll() is None, procs.log("worker")[-3000:]  # the same worker process, still up

        # ... and it keeps exporting: a working model, and one that looks around while it is built
        calm = submit(fleet, spec("calm", ["tiny", "peeks"]), "manual")
        jobs = wait_until(lambda: _settled(calm), 180, "the calm exports")
        assert isinstance(jobs, dict)
        for factory in ("tiny", "peeks"):
            job = jobs[factory]
            assert job.state == "waiting-for-device" and job.artifact_key, (factory, job.state, job.reason)
            assert store.get(job.artifact_key).meta["delegation"]["delegated_ratio"] > 0.5
        assert worker.poll() is None
        log = procs.log("worker")

    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["pid"] != worker.pid
    visible = json.dumps(seen)
    for value in secret_values:
        assert value not in visible  # not in os.environ, not in /proc/self/environ
        assert value not in log
    assert "REDIS_URL" not in seen["environ"] and "BENCHFARM_DB" not in seen["environ"]
    assert "REDIS_URL" not in seen["proc_environ"] and "BENCHFARM_ARTIFACTS" not in seen["proc_environ"]
    assert seen["environ"]["PATH"] == env["PATH"] and seen["environ"]["BENCHFARM_MODEL_PACKAGES"] == PACKAGE
    # no inherited Redis or database connection: the only sockets are none at all
    assert not [t for t in seen["fds"].values() if t.startswith("socket:") or t.endswith(".db")], seen["fds"]


def test_child_env_keeps_what_an_export_needs_and_drops_credentials() -> None:
    env = {"PATH": "/usr/bin", "HOME": "/home/u", "TMPDIR": "/tmp/x", "LANG": "C.UTF-8", "PYTHONPATH": "/src",
           "OMP_NUM_THREADS": "2", "TORCH_HOME": "/cache/torch", "BENCHFARM_MODEL_PACKAGES": "pkg",
           "BENCHFARM_API_TOKEN": "t", "DATABASE_URL": "postgresql://u:pw@db/x", "REDIS_URL": "redis://:pw@r",
           "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "GITHUB_TOKEN": "g", "TORCH_HUB_TOKEN": "h",
           "MY_PASSWORD": "p", "SOME_SECRET": "s", "BENCHFARM_ARTIFACTS": "/store", "SSH_AUTH_SOCK": "/s"}
    assert child_env(env) == {k: env[k] for k in ("PATH", "HOME", "TMPDIR", "LANG", "PYTHONPATH", "OMP_NUM_THREADS",
                                                  "TORCH_HOME", "BENCHFARM_MODEL_PACKAGES")}


def test_a_spec_of_registered_sources_validates_without_importing_them(confined: dict[str, str]) -> None:
    import sys

    loads_spec(spec("v", [*FAILING, "tiny", "peeks"]), "v.yaml")
    assert PACKAGE not in sys.modules

"""Celery is JSON-only end to end: the app refuses pickle, and a real ``benchfarm worker``
that receives a pickle-serialised message drops it without unpickling it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from celery import Celery

from orchestrator.celery_app import COORDINATOR_QUEUE, app
from tests.conftest import Procs, wait_until


class _Exploit:
    """Unpickling this calls open(marker, 'w'): the marker file is the proof of execution."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_the_app_accepts_json_only() -> None:
    conf = app.conf
    assert list(conf.accept_content) == ["json"]
    assert conf.task_serializer == conf.result_serializer == conf.event_serializer == "json"
    assert conf.result_accept_content in (None, ["json"])  # None falls back to accept_content


def test_a_worker_refuses_a_pickle_message_and_never_executes_it(rel_env: dict[str, str], rel_procs: Procs,
                                                                 tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    rel_procs.env = dict(rel_env, BENCHFARM_TASK_LOG_LEVEL="INFO")  # the task lines tell what ran
    rel_procs.start("worker", "worker", "--queues", COORDINATOR_QUEUE, "--concurrency", "1")
    wait_until(lambda: "ready." in rel_procs.log("worker"), 60, "the worker to start")
    # a producer that is allowed to serialise pickle (an attacker with broker access)
    attacker = Celery("attacker", broker=rel_env["REDIS_URL"])
    attacker.conf.update(task_serializer="pickle", accept_content=["pickle", "json"],
                         broker_transport_options=app.conf.broker_transport_options)
    attacker.send_task("benchfarm.attempt_started", args=[_Exploit(marker)], queue=COORDINATOR_QUEUE,
                       serializer="pickle")
    # then a JSON message: once it ran, the pickle message ahead of it was consumed
    app.send_task("benchfarm.attempt_started", args=[{"attempt_id": "no-such-attempt"}], queue=COORDINATOR_QUEUE)
    wait_until(lambda: "benchfarm.attempt_started" in rel_procs.log("worker") and "succeeded" in
               rel_procs.log("worker"), 60, "the JSON message to be processed")
    log = rel_procs.log("worker")
    assert not marker.exists(), "the pickle payload was executed"
    assert "pickle" in log and ("ContentDisallowed" in log or "Refusing to deserialize" in log), log[-3000:]
    # only the JSON message became a task, and only after the pickle one was refused
    assert log.count("] received") == 1 and log.count("] succeeded") == 1
    assert log.index("Refusing to deserialize") < log.index("] received")


def test_no_code_sets_a_permissive_ssh_host_key_policy() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(["git", "grep", "-nE", r"AutoAddPolicy|WarningPolicy|MissingHostKeyPolicy\(\)", "--",
                          "*.py", ":!tests/security/*"], cwd=root, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and not out.stdout, out.stdout  # 1: no match

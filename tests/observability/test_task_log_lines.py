"""Celery's per-task lines ("Task ... received", "... succeeded in") are off in a coordinator
worker unless BENCHFARM_TASK_LOG_LEVEL=INFO asks for them (a real worker process)."""

from __future__ import annotations

import pytest

from orchestrator.celery_app import COORDINATOR_QUEUE, app
from tests.conftest import Procs, wait_until


@pytest.mark.integration
@pytest.mark.parametrize(("level", "task_lines"), [("", False), ("INFO", True), ("loud", False)])
def test_task_lines_follow_the_task_log_level(obs_env: dict[str, str], obs_procs: Procs, level: str,
                                              task_lines: bool) -> None:
    obs_procs.env = dict(obs_env, BENCHFARM_TASK_LOG_LEVEL=level)
    obs_procs.start("worker", "worker", "--queues", COORDINATOR_QUEUE, "--concurrency", "1")
    wait_until(lambda: "ready." in obs_procs.log("worker"), 60, "the worker to start")
    for attempt_id in ("first", "second"):  # one thread: the first is done once the second is rejected
        app.send_task("benchfarm.record_attempt", args=[{"attempt_id": attempt_id, "outcome": "ok"}],
                      queue=COORDINATOR_QUEUE)
    wait_until(lambda: "rejected report for attempt second" in obs_procs.log("worker"), 60, "both reports")
    log = obs_procs.log("worker")
    first = [ln for ln in log.splitlines() if "benchfarm.record_attempt[" in ln]
    assert any("received" in ln for ln in first) is task_lines, log[-3000:]
    assert any("succeeded in" in ln for ln in first) is task_lines, log[-3000:]
    assert log.count("is not a log level") == (1 if level == "loud" else 0)


def test_a_quiet_worker_still_says_when_a_task_retries(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    import logging
    from types import SimpleNamespace

    from celery.signals import task_retry

    from orchestrator import worker

    saved = {name: logging.getLogger(name).level for name in worker.TASK_LOGGERS}
    monkeypatch.delenv(worker.TASK_LOG_LEVEL_ENV, raising=False)
    worker.quiet_task_lines()
    try:
        assert not logging.getLogger("celery.app.trace").isEnabledFor(logging.INFO)
        request = SimpleNamespace(task="benchfarm.record_attempt", id="t-1")
        task_retry.send(sender=None, request=request, reason="Retry in 1s: database is locked")
        assert [r.getMessage() for r in caplog.records if r.name == "benchfarm.worker"] == [
            "task benchfarm.record_attempt[t-1] retry: Retry in 1s: database is locked"]
    finally:
        task_retry.disconnect(dispatch_uid="benchfarm.retry_line")
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)  # setLevel: also drops the loggers' level caches

"""Structured logs: one JSON object per line, ids bound per block / per process / per
Celery task, no passwords, threads keep their own ids."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from orchestrator.observability import logs


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch):
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    monkeypatch.setattr(logs, "_process", {})
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.setup_logging(fmt="json")
    yield lambda: [json.loads(ln) for ln in buf.getvalue().splitlines()]
    root.handlers[:], root.level = saved


def test_every_line_is_json_with_the_bound_ids(captured):
    log = logging.getLogger("benchfarm.test")
    log.info("outside")
    with logs.log_context(run_id="r1", job_id="j1"):
        with logs.log_context(attempt_id="a1", device_id=None):
            log.warning("inside %s", "nested")
        log.info("job only")
    lines = captured()
    assert [ln["msg"] for ln in lines] == ["outside", "inside nested", "job only"]
    assert lines[0]["run_id"] is None and lines[0]["device_id"] is None
    assert (lines[1]["run_id"], lines[1]["job_id"], lines[1]["attempt_id"], lines[1]["device_id"]) == (
        "r1", "j1", "a1", None)
    assert lines[2]["attempt_id"] is None and lines[2]["level"] == "INFO" and lines[2]["logger"] == "benchfarm.test"


def test_process_ids_reach_threads_and_context_ids_do_not_leak_between_threads(captured):
    logs.bind_process(device_id="dev-1")
    log = logging.getLogger("benchfarm.test")

    def work(n: int) -> None:
        with logs.log_context(job_id=f"j{n}"):
            log.info("job %d", n)

    with logs.log_context(job_id="main"):
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = captured()
    assert sorted((ln["msg"], ln["job_id"]) for ln in lines) == [(f"job {n}", f"j{n}") for n in range(4)]
    assert all(ln["device_id"] == "dev-1" for ln in lines)


def test_passwords_in_urls_and_tracebacks_are_masked(captured):
    log = logging.getLogger("benchfarm.test")
    try:
        raise RuntimeError("cannot reach postgresql://bench:hunter2@db:5432/results")
    except RuntimeError:
        log.exception("broker redis://:s3cret@10.0.0.5:6379/0 down")
    (line,) = captured()
    assert "s3cret" not in json.dumps(line) and "hunter2" not in json.dumps(line)
    assert "redis://:***@10.0.0.5" in line["msg"] and "bench:***@db" in line["exc"]


def test_celery_task_payload_ids_are_bound_for_the_task(captured):
    from celery.signals import task_postrun, task_prerun

    log = logging.getLogger("benchfarm.test")
    payload = {"run_id": "r9", "job_id": "j9", "attempt_id": "a9"}
    task_prerun.send(sender=None, task_id="t1", task=None, args=[payload], kwargs={})
    log.info("in task")
    task_postrun.send(sender=None, task_id="t1", task=None, args=[payload], kwargs={}, retval=None, state="SUCCESS")
    log.info("after task")
    inside, after = captured()
    assert (inside["run_id"], inside["job_id"], inside["attempt_id"]) == ("r9", "j9", "a9")
    assert after["attempt_id"] is None


def test_text_format_shows_ids_and_a_bad_format_is_named(monkeypatch):
    record = logging.LogRecord("benchfarm.x", logging.INFO, __file__, 1, "hello", None, None)
    record.bf = {"job_id": "j1"}
    assert logs.TextFormatter().format(record).endswith("benchfarm.x: hello [job_id=j1]")
    monkeypatch.setenv(logs.FORMAT_ENV, "xml")
    with pytest.raises(ValueError, match="BENCHFARM_LOG_FORMAT='xml': use json or text"):
        logs.setup_logging()

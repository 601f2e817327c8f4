"""An attempt starts with its lease: the fleet's ``leased`` event, copied by the coordinator's
device-event drain, marks it running (agents send no "started" message). Real Redis, real DB."""

import time
from datetime import UTC

from sqlalchemy import func, select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.device_history import drain_device_events
from orchestrator.coordinator.record import record_attempt
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, DeviceEvent, Job
from tests.core.test_runs import dispatch_ready, result_doc, submit


def _lease(fleet: Fleet, job_id: str, attempt_id: str):
    fleet.register("d1", {"device_class": "A15", "host": "mac-7", "driver": "ios"}, heartbeat_ttl=60)
    return fleet.acquire("d1", attempt_id, job_id, 60)


def _report(job_id, attempt_id, lease, **over):
    return {"attempt_id": attempt_id, "job_id": job_id, "device_id": "d1", "host": "mac-7",
            "lease_token": lease.token, "outcome": "ok", "result": result_doc(job_id, attempt_id), **over}


def test_the_lease_event_marks_the_attempt_and_its_job_running(bf_env, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHFARM_ARTIFACTS", str(tmp_path / "artifacts"))
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    lease = _lease(fleet, job_id, attempt_id)
    drain_device_events(fleet)
    drain_device_events(fleet)  # a second copy changes nothing and inserts nothing twice
    with session() as s:
        attempt, job = s.get(Attempt, attempt_id), s.get(Job, job_id)
        assert (attempt.state, attempt.device_id, attempt.host, attempt.lease_token) == \
            ("running", "d1", "mac-7", lease.token)
        assert attempt.started_at is not None and job.state == "running" and job.started_at == attempt.started_at
        leased = s.scalar(select(func.count()).select_from(DeviceEvent).where(DeviceEvent.state == "leased"))
        assert leased == 1
    ok, _ = record_attempt(_report(job_id, attempt_id, lease), fleet)
    assert ok.accepted
    with session() as s:
        assert s.get(Attempt, attempt_id).state == "succeeded" and s.get(Job, job_id).state == "succeeded"


def test_a_report_recorded_before_its_lease_event_keeps_its_start_and_is_not_reopened(bf_env, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("BENCHFARM_ARTIFACTS", str(tmp_path / "artifacts"))
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    lease = _lease(fleet, job_id, attempt_id)
    leased_at = time.time() - 30
    ok, _ = record_attempt(_report(job_id, attempt_id, lease, started_at=leased_at), fleet)
    assert ok.accepted
    drain_device_events(fleet)  # the late copy of the lease event must not reopen the attempt
    with session() as s:
        attempt, job = s.get(Attempt, attempt_id), s.get(Job, job_id)
        assert attempt.state == "succeeded" and job.state == "succeeded"
        assert attempt.host == "mac-7"
        assert abs((attempt.finished_at - attempt.started_at).total_seconds() - 30) < 5
        assert job.started_at == attempt.started_at


def test_the_started_message_says_when_the_lease_was_taken_and_comes_too_late_to_reopen(bf_env, tmp_path,
                                                                                        monkeypatch):
    from orchestrator.coordinator.record import attempt_started

    monkeypatch.setenv("BENCHFARM_ARTIFACTS", str(tmp_path / "artifacts"))
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    lease = _lease(fleet, job_id, attempt_id)
    leased_at = time.time() - 30  # the message was held up (a broker blip): the start is the lease's
    started = {"attempt_id": attempt_id, "device_id": "d1", "host": "mac-7", "lease_token": lease.token,
               "started_at": leased_at}
    assert attempt_started(started)
    with session() as s:
        attempt, job = s.get(Attempt, attempt_id), s.get(Job, job_id)
        assert (attempt.state, attempt.host, job.state) == ("running", "mac-7", "running")
        assert abs(attempt.started_at.replace(tzinfo=UTC).timestamp() - leased_at) < 1  # stored naive, in UTC
        assert job.started_at == attempt.started_at
    ok, _ = record_attempt(_report(job_id, attempt_id, lease), fleet)
    assert ok.accepted
    assert not attempt_started(started)  # redelivered after the report: changes nothing
    with session() as s:
        assert s.get(Attempt, attempt_id).state == "succeeded" and s.get(Job, job_id).state == "succeeded"

"""The coordinator's domain with a real database and real Redis, no worker: state
transitions, exactly-one result, fencing, retry vs fail, cancellation, finalise-once."""

import threading

import pytest
import redis
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.cancel import cancel
from orchestrator.coordinator.dispatch import MAX_ATTEMPTS
from orchestrator.coordinator.exports import export_done
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.coordinator.reap import finalize_stragglers, reap, reap_lost
from orchestrator.coordinator.record import attempt_started, record_attempt
from orchestrator.coordinator.run_state import RunNotFound
from orchestrator.coordinator.submit import submit as submit_run
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result, Run
from orchestrator.store.states import InvalidTransition, check_job_transition

SPEC = """\
name: unit
models: [tiny_cnn]
backends: [xnnpack, mps]
devices: [A15]
parameters: {input_resolution: [64], iterations: 3, warmup: 0}
"""


@pytest.fixture
def fleet(bf_env, tmp_path, monkeypatch):
    # a private, empty artifact store: these tests drive the export callback themselves
    monkeypatch.setenv("BENCHFARM_ARTIFACTS", str(tmp_path / "artifacts"))
    return Fleet.from_url(bf_env["REDIS_URL"])


def submit(fleet, text=SPEC, trigger="manual"):
    run_id, outbox = submit_run(loads_spec(text), text, fleet, trigger=trigger)
    return run_id, outbox


def make_ready(run_id):
    """The export requests of the run's xnnpack jobs (what the exporter answers with export_done)."""
    with session() as s:
        keys = {j.request_key for j in s.scalars(select(Job).where(Job.run_id == run_id, Job.backend == "xnnpack"))}
    return keys


def queued(fleet, queue):
    return sum(fleet.r.llen(k) for k in fleet.r.keys(f"{queue}*") if fleet.r.type(k) == b"list"
               or fleet.r.type(k) == "list")


def result_doc(job, attempt, **over):
    doc = {"schema_version": 1, "job_id": job, "attempt_id": attempt, "attempt_token": 1, "simulated": True,
           "producer": {"name": "virtual-harness", "version": "1"},
           "device": {"model": "iPhone14,5", "os": "iOS", "os_version": "16.6"}, "backend": "xnnpack",
           "status": "ok", "load_time_ms": 5.0, "latencies_ms": [10.0, 11.0, 12.0], "peak_memory_bytes": 5 * 10**7,
           "started_at": "2026-11-25T10:00:00+00:00", "finished_at": "2026-11-25T10:00:01+00:00"}
    doc.update(over)
    return doc


def dispatch_ready(fleet, run_id):
    """Run the export callback for the run's xnnpack artifact and return its (job, attempt)."""
    [request] = make_ready(run_id)
    outbox = export_done(request, "ok", {"artifact_key": "b" * 64, "file_sha256": "a" * 64, "size_bytes": 123,
                                         "export_time_s": 1.0}, fleet)
    with session() as s:
        job = s.scalars(select(Job).where(Job.run_id == run_id, Job.backend == "xnnpack")).one()
        attempt = s.scalars(select(Attempt).where(Attempt.job_id == job.id)).one()
        return job.id, attempt.id, outbox


def test_transitions():
    check_job_transition("queued", "exporting")
    check_job_transition("running", "waiting-for-device")
    for bad in [("succeeded", "running"), ("queued", "running"), ("failed", "queued"), ("blocked", "queued")]:
        with pytest.raises(InvalidTransition):
            check_job_transition(*bad)


def test_submit_routes_exports_and_blocks_backends_without_an_exporter(fleet):
    run_id, outbox = submit(fleet)
    with session() as s:
        jobs = {j.backend: j for j in s.scalars(select(Job).where(Job.run_id == run_id))}
    assert jobs["xnnpack"].state == "exporting"
    assert jobs["mps"].state == "blocked" and "needs a macOS exporter" in jobs["mps"].reason
    assert [m.queue for m in outbox.messages] == ["export.linux"]
    # with a macOS exporter alive, MPS is routed to it instead
    fleet.exporters.heartbeat("macos")
    run2, outbox2 = submit(fleet)
    assert sorted(m.queue for m in outbox2.messages) == ["export.linux", "export.macos"]


def test_the_exporter_keys_a_torch_model_and_the_jobs_learn_it(fleet):
    run_id, _ = submit(fleet)
    with session() as s:
        job = s.scalars(select(Job).where(Job.run_id == run_id, Job.backend == "xnnpack")).one()
        assert job.artifact_key == "" and len(job.request_key) == 64  # the coordinator never fingerprints
    job_id, attempt_id, outbox = dispatch_ready(fleet, run_id)
    with session() as s:
        job = s.get(Job, job_id)
        assert job.artifact_key == "b" * 64 and job.state == "waiting-for-device"
    assert [m.args[0]["artifact_key"] for m in outbox.messages] == ["b" * 64]


def test_record_exactly_once_and_fencing(fleet):
    run_id, _ = submit(fleet)
    job_id, attempt_id, outbox = dispatch_ready(fleet, run_id)
    assert [m.queue for m in outbox.messages] == ["device.A15"]
    assert fleet.attempt_state(attempt_id) == "dispatched"
    assert attempt_started({"attempt_id": attempt_id, "device_id": "d1", "lease_token": 1})
    report = {"attempt_id": attempt_id, "job_id": job_id, "device_id": "d1", "lease_token": 1, "outcome": "ok",
              "result": result_doc(job_id, attempt_id)}
    ok, _ = record_attempt(report, fleet)
    assert ok.accepted
    again, _ = record_attempt(report, fleet)  # Celery redelivered the report
    assert not again.accepted
    with session() as s:
        assert len(s.scalars(select(Result).where(Result.job_id == job_id)).all()) == 1
        r = s.scalars(select(Result)).one()
        assert r.simulated and r.median_ms == 11.0
        run = s.get(Run, run_id)
        # xnnpack succeeded, mps blocked: the run is finalised as partial
        assert run.finalized and run.status == "partial"


def test_the_stored_mean_is_the_reports_mean(fleet):
    """One definition of mean_ms: the API serves the stored figure, the CSV and reports compute
    theirs from the samples; a far-out hiccup is excluded from both."""
    from orchestrator.analysis.stats import summarize

    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    samples = [10.0, 11.0, 12.0, 10.5, 11.5, 11.0, 10.0, 400.0]
    ok, _ = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok", "device_id": "d1",
                            "lease_token": 1, "result": result_doc(job_id, attempt_id, latencies_ms=samples)}, fleet)
    assert ok.accepted
    with session() as s:
        stored = s.scalars(select(Result).where(Result.job_id == job_id)).one().mean_ms
    assert stored == summarize(samples).mean and stored < sum(samples) / len(samples) / 2


def test_a_corrupt_document_is_an_infrastructure_failure_and_is_retried(fleet):
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    bad = result_doc(job_id, attempt_id, latencies_ms=[])
    out, outbox = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok", "result": bad},
                                 fleet)
    assert out.accepted and out.retried
    assert outbox.messages[0].countdown > 0  # backoff
    with session() as s:
        attempts = s.scalars(select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number)).all()
        assert [a.state for a in attempts] == ["infra_failed", "dispatched"]
        assert attempts[0].error_category == "bad_result" and "latencies_ms" in attempts[0].error
        assert s.scalars(select(Result)).all() == []


@pytest.mark.parametrize("outcome", ["ok", "model"])
def test_an_ios_result_from_a_runtime_older_than_the_exporter_is_refused(fleet, outcome):
    run_id, _ = submit(fleet)
    [request] = make_ready(run_id)
    meta = {"artifact_key": "b" * 64, "file_sha256": "a" * 64, "size_bytes": 123, "export_time_s": 1.0,
            "exporter": {"platform": "linux", "versions": {"executorch": "1.5.1", "torch": "2.13.0"}}}
    export_done(request, "ok", meta, fleet)
    with session() as s:
        job = s.scalars(select(Job).where(Job.run_id == run_id, Job.backend == "xnnpack")).one()
        job_id, attempt_id = job.id, s.scalars(select(Attempt).where(Attempt.job_id == job.id)).one().id
    old = result_doc(job_id, attempt_id, producer={"name": "ios-harness", "version": "1.0.0"}, simulated=False,
                     runtime_version="1.0.0")
    if outcome == "model":
        old.update(status="error", error={"category": "unsupported_op", "message": "OperatorMissing"})
    report = {"attempt_id": attempt_id, "job_id": job_id, "outcome": outcome, "result": old,
              "category": "unsupported_op", "message": "OperatorMissing"}
    out, _ = record_attempt(report, fleet)
    assert out.accepted and out.retried  # another device may carry a current harness build
    with session() as s:
        attempts = s.scalars(select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number)).all()
        assert attempts[0].state == "infra_failed" and attempts[0].error_category == "runtime_mismatch"
        assert "1.0.0" in attempts[0].error and "1.5.1" in attempts[0].error
        assert s.scalars(select(Result)).all() == []
        retry_id = attempts[1].id
    # the retry lands on a phone whose app links the exporter's release: recorded
    current = result_doc(job_id, retry_id, producer={"name": "ios-harness", "version": "1.1.0"}, simulated=False,
                         runtime_version="1.5.1")
    out, _ = record_attempt({"attempt_id": retry_id, "job_id": job_id, "outcome": "ok", "result": current}, fleet)
    assert out.accepted and not out.retried
    with session() as s:
        assert s.scalars(select(Result)).one().attempt_id == retry_id


def test_infra_failures_retry_up_to_the_limit_then_fail(fleet):
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    for _ in range(MAX_ATTEMPTS):
        out, _ = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "infra",
                                 "category": "device_lost", "message": "unplugged"}, fleet)
        assert out.accepted
        with session() as s:
            last = s.scalars(select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number.desc())).first()
            attempt_id = last.id
    with session() as s:
        job = s.get(Job, job_id)
        assert job.state == "failed" and job.attempt_count == MAX_ATTEMPTS
        assert "infrastructure failure after 3 attempts (device_lost)" in job.reason


def test_model_failures_fail_at_once(fleet):
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    out, outbox = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "model",
                                  "category": "unsupported_op", "message": "aten::foo"}, fleet)
    assert out.accepted and not out.retried and not outbox.messages
    with session() as s:
        job = s.get(Job, job_id)
        assert job.state == "failed" and "unsupported_op" in job.reason and job.attempt_count == 1


def test_reaped_lease_fences_the_attempt_and_rejects_its_late_result(fleet):
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    fleet.register("d1", {"device_class": "A15"})
    fleet.acquire("d1", attempt_id, job_id, ttl=-1)  # already expired
    attempt_started({"attempt_id": attempt_id, "device_id": "d1", "lease_token": 1})
    fenced, outbox = reap(fleet)
    assert fenced == [attempt_id] and outbox.messages[0].queue == "device.A15"
    late, _ = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok",
                              "result": result_doc(job_id, attempt_id)}, fleet)
    assert not late.accepted and "fenced" in late.reason
    with session() as s:
        assert s.scalars(select(Result)).all() == []
        assert s.get(Attempt, attempt_id).state == "fenced"


def test_cancel_drops_queued_work_and_finalises_once(fleet):
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    assert cancel(run_id, fleet) == 1
    assert fleet.attempt_state(attempt_id) == "cancelled"
    with session() as s:
        run = s.get(Run, run_id)
        assert run.finalized and run.status == "cancelled"
        finished = run.finished_at
    late, _ = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok",
                              "result": result_doc(job_id, attempt_id)}, fleet)
    assert not late.accepted
    with session() as s:
        assert s.get(Run, run_id).finished_at == finished
    with pytest.raises(RunNotFound):
        cancel("nope", fleet)


def test_concurrent_finalisers_finalise_once(fleet):
    run_id, _ = submit(fleet)
    with session() as s:
        for j in s.scalars(select(Job).where(Job.run_id == run_id)):
            j.state = "failed"
        s.get(Run, run_id).finalized = False
    wins = []
    barrier = threading.Barrier(4)

    def finalise():
        barrier.wait()
        with session() as s:
            wins.append(finalize_if_done(s, run_id))

    threads = [threading.Thread(target=finalise) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


def test_priorities_put_pr_work_ahead_in_the_broker(fleet, bf_env):
    nightly, out_n = submit(fleet, trigger="nightly")
    pr, out_p = submit(fleet, trigger="pr")
    assert out_p.messages[0].priority < out_n.messages[0].priority
    with pytest.raises(ValueError, match="unknown trigger"):
        submit(fleet, trigger="whenever")
    client = redis.Redis.from_url(bf_env["REDIS_URL"])
    out_n.send()
    out_p.send()
    # kombu's Redis transport keeps one list per priority step: export.linux:0 (PR) is served before :6
    assert client.llen("export.linux") + client.llen("export.linux:0") >= 1
    assert client.llen("export.linux:6") >= 1
    with session() as s:  # both runs' jobs wait for the exporter's answer to their requests
        assert {j.state for j in s.scalars(select(Job).where(Job.backend == "xnnpack"))} == {"exporting"}


def test_attempts_the_broker_lost_are_retried_and_their_late_reports_rejected(fleet):
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    outbox = Outbox()
    assert reap_lost(fleet, outbox) == []  # young, and its Redis record is there
    assert reap_lost(fleet, outbox, grace_s=-1) == []  # old, but the record is there: just waiting
    fleet.r.delete(f"bf:attempt:{attempt_id}")  # Redis restarted without persistence
    assert reap_lost(fleet, outbox) == []  # within the grace period nothing is judged
    assert reap_lost(fleet, outbox, grace_s=-1) == [attempt_id]
    with session() as s:
        job = s.get(Job, job_id)
        lost = s.get(Attempt, attempt_id)
        assert (lost.state, lost.error_category) == ("fenced", "broker_lost")
        retry = [a for a in job.attempts if a.id != attempt_id]
        assert job.state == "waiting-for-device" and len(retry) == 1
    assert fleet.attempt_state(retry[0].id) == "dispatched"
    assert [m.args[0]["attempt_id"] for m in outbox.messages] == [retry[0].id]
    late, _ = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok",
                              "result": result_doc(job_id, attempt_id)}, fleet)
    assert not late.accepted and "fenced" in late.reason


def test_the_reaper_finalises_a_run_nobody_finalised(fleet):
    run_id, _ = submit(fleet)
    with session() as s:
        for j in s.scalars(select(Job).where(Job.run_id == run_id)):
            j.state = "failed"  # as if two coordinators recorded the last jobs and each saw the other open
        s.get(Run, run_id).finalized = False
    _fenced, outbox = reap(fleet)
    with session() as s:
        run = s.get(Run, run_id)
        assert run.finalized and run.status == "failed"
    assert [e for e, _ in outbox.events] == ["run_finished"]
    assert finalize_stragglers(fleet, Outbox()) == []


def test_a_late_started_report_never_reopens_a_recorded_attempt(fleet):
    """After a broker restart an agent's 'started' and 'finished' reports can be consumed at
    once by two coordinator threads; whatever the interleaving, the attempt ends succeeded."""
    for _ in range(12):
        run_id, _ = submit(fleet)
        job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
        barrier = threading.Barrier(2)

        def started(attempt_id=attempt_id, barrier=barrier):
            barrier.wait()
            attempt_started({"attempt_id": attempt_id, "device_id": "d1", "lease_token": 1})

        def finished(attempt_id=attempt_id, job_id=job_id, barrier=barrier):
            barrier.wait()
            record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok", "device_id": "d1",
                            "lease_token": 1, "result": result_doc(job_id, attempt_id)}, fleet)

        threads = [threading.Thread(target=started), threading.Thread(target=finished)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with session() as s:
            assert s.get(Attempt, attempt_id).state == "succeeded"
            assert s.get(Job, job_id).state == "succeeded"


def test_the_longest_jobs_are_sent_first(fleet):
    """LPT: a class queue is served first in, first out, so the largest programs' requests and,
    per program, the most iterations go first; a matrix then ends on short jobs on every device."""
    text = SPEC.replace("backends: [xnnpack, mps]", "backends: [xnnpack]").replace(
        "input_resolution: [64]", "input_resolution: [32, 256, 64], batch_size: [1, 4]")
    run_id, outbox = submit(fleet, text)
    sizes = [(m.args[1]["input_resolution"], m.args[1]["batch_size"]) for m in outbox.messages
             if m.task == "benchfarm.export"]
    work = [r * r * b for r, b in sizes]
    assert len(sizes) == 6 and work == sorted(work, reverse=True), sizes
    # a program two runs wait for: the run with more iterations per job is dispatched first
    longer, _ = submit(fleet, text.replace("iterations: 3", "iterations: 50"))
    done = export_done(outbox.messages[0].args[0], "ok", {"artifact_key": "e" * 64, "file_sha256": "a" * 64,
                                                           "size_bytes": 1}, fleet)
    runs = [m.args[0]["run_id"] for m in done.messages if m.task == "benchfarm.run_job"]
    assert runs == [longer, run_id], runs

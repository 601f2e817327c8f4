"""The record path's Core SQL (no ORM objects) writes what the ORM path wrote, and the two CPU
savings around it behave: SQLite's commit durability setting, kombu's shared Redis client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from orchestrator.analysis import stability
from orchestrator.analysis.stats import summarize
from orchestrator.coordinator.record import record_attempt
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result
from tests.core.test_runs import dispatch_ready, fleet, result_doc, submit  # noqa: F401 (fixture)


def test_a_recorded_result_sets_the_attempt_job_and_result_rows(fleet):  # noqa: F811
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    samples = [10.0, 11.0, 12.0, 10.5, 11.5, 11.0, 10.0, 400.0]
    doc = result_doc(job_id, attempt_id, latencies_ms=samples, energy_mj_per_inference=2.5)
    out, outbox = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok", "device_id": "d7",
                                  "host": "h" * 300, "lease_token": 4, "timeline": [["leased", 1.0]],
                                  "started_at": 1.8e9, "result": doc}, fleet)
    assert out.accepted and not out.retried and outbox.messages == []
    with session() as s:
        attempt, job = s.get(Attempt, attempt_id), s.get(Job, job_id)
        result = s.query(Result).filter_by(job_id=job_id).one()
        assert (attempt.state, attempt.device_id, attempt.host, attempt.lease_token, attempt.timeline) == (
            "succeeded", "d7", "h" * 200, 4, [["leased", 1.0]])
        # no lease event was copied: the report's lease time, bounded by the finish
        assert attempt.started_at is not None and attempt.started_at <= attempt.finished_at
        assert (job.state, job.reason, job.started_at) == ("succeeded", "", attempt.started_at)
        assert job.finished_at - attempt.finished_at < timedelta(seconds=5)
        st, stab = summarize(samples), stability.of_samples(samples)
        assert (result.attempt_id, result.device_id, result.device_model, result.os_version) == (
            attempt_id, "d7", "iPhone14,5", "16.6")
        assert (result.median_ms, result.p10_ms, result.p90_ms, result.mean_ms) == (st.median, st.p10, st.p90,
                                                                                  st.mean)
        assert (result.cv, result.p99_p50, result.max_min) == (stab.cv, stab.p99_p50, stab.max_min)
        assert (result.energy_mj, result.peak_memory_bytes, result.simulated) == (2.5, 5 * 10**7, True)
        assert result.document["latencies_ms"] == samples and result.recorded_at is not None
    # what the metrics are told, read while the rows were at hand
    assert (out.job.state, out.job.device_class, out.job.trigger) == ("succeeded", "A15", "manual")
    assert out.job.run_s is not None and out.job.run_s >= 0


def test_stability_from_a_given_summary_is_the_same_figure():
    samples = [3.0, 1.0, 2.0, 2.5, 9.0, 2.2, 1.9]
    assert stability.of_samples(samples, summarize(samples)) == stability.of_samples(samples)


def test_sqlite_commits_skip_the_fsync_unless_asked(bf_env, tmp_path, monkeypatch):
    from orchestrator.store import db

    def synchronous(path: str) -> int:
        with db.engine(f"sqlite:///{path}").connect() as conn:
            return int(conn.execute(text("PRAGMA synchronous")).scalar_one())

    assert synchronous(str(tmp_path / "a.db")) == 1  # NORMAL
    monkeypatch.setenv("BENCHFARM_SQLITE_SYNCHRONOUS", "full")
    assert synchronous(str(tmp_path / "b.db")) == 2  # FULL
    monkeypatch.setenv("BENCHFARM_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        synchronous(str(tmp_path / "c.db"))


def test_the_broker_channel_shares_one_client_per_pool(bf_env):
    from orchestrator.celery_app import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
        channel.basic_publish(channel.prepare_message("x"), exchange="", routing_key="bf-test-shared-client")
        assert channel.client.llen("bf-test-shared-client") == 1  # a real publish through it
        channel._disconnect_pools()  # what a disconnect or a fork does: the old pool's client goes too
        with channel.conn_or_acquire() as third:
            assert third is not first and third.connection_pool is channel.pool
            assert third.lpop("bf-test-shared-client") is not None

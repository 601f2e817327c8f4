"""The reconciler against real Redis (the broker's own unacked entries) and a real database: a
submit whose sender died is sent from the database outbox; a delivery whose consumer died is
re-published when nobody works on it, and only then."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.celery_app import app
from orchestrator.coordinator.reconcile import Reconciled, redeliver_stale, resend_outbox
from orchestrator.store.db import session
from orchestrator.store.models import OutboxBatch
from tests.core.test_runs import fleet, queued, submit  # noqa: F401 (fixture)


def _batches() -> list[OutboxBatch]:
    with session() as s:
        return list(s.scalars(select(OutboxBatch)))


def test_a_submit_whose_sender_died_is_sent_from_the_database(fleet):  # noqa: F811
    _run_id, outbox = submit(fleet)  # committed; the submitter "dies" before outbox.send()
    [batch] = _batches()
    assert [m["task"] for m in batch.messages] == ["benchfarm.export"]
    assert queued(fleet, "export.linux") == 0
    assert resend_outbox(app, grace_s=3600) == 0  # a live sender still has time
    assert resend_outbox(app, grace_s=0) == 1
    assert queued(fleet, "export.linux") == 1 and _batches() == []


def test_a_sent_outbox_leaves_nothing_behind(fleet):  # noqa: F811
    _run_id, outbox = submit(fleet)
    outbox.send(app)
    assert _batches() == [] and queued(fleet, "export.linux") == 1


def _take(queue: str) -> Any:
    """A consumer takes one message and 'dies' holding it (never acks): kombu keeps it unacked."""
    conn = app.connection_for_read()
    q = conn.SimpleQueue(queue)
    q.get(timeout=5)
    return conn


@pytest.mark.parametrize(("state", "verdict"), [("dispatched", "redelivered"), ("claimed", "kept"),
                                                ("fenced", "dropped"), (None, "dropped")])
def test_a_taken_run_job_is_redelivered_only_while_unclaimed(fleet, state, verdict):  # noqa: F811
    if state is not None:
        fleet.dispatch_attempt("a1")
        fleet.r.hset("bf:attempt:a1", "state", state)
    app.send_task("benchfarm.run_job", args=[{"attempt_id": "a1", "job_id": "j1"}], queue="device.A15", priority=3)
    conn = _take("device.A15")
    out = Reconciled()
    redeliver_stale(fleet, app, 3600, out)
    assert out.redelivered == [] and fleet.r.hlen("unacked") == 1  # younger than the bound: left alone
    redeliver_stale(fleet, app, 0, out)
    assert (out.redelivered == ["run_job:a1"]) == (verdict == "redelivered")
    assert (out.dropped == 1) == (verdict == "dropped")
    assert fleet.r.hlen("unacked") == (1 if verdict == "kept" else 0)
    assert fleet.r.llen("device.A15:3") == (1 if verdict == "redelivered" else 0)  # its priority kept
    conn.release()


@pytest.mark.parametrize("alive", [True, False])
def test_a_taken_export_is_redelivered_once_its_exporter_stopped_beating(fleet, alive):  # noqa: F811
    app.send_task("benchfarm.export", args=["req1", {"model": "tiny_cnn"}], queue="export.linux", priority=0)
    conn = _take("export.linux")
    out = Reconciled()
    if alive:
        with fleet.exporters.working("req1", ttl_s=30):
            redeliver_stale(fleet, app, 0, out)
    else:
        redeliver_stale(fleet, app, 0, out)
    assert out.redelivered == ([] if alive else ["export:req1"])
    assert queued(fleet, "export.linux") == (0 if alive else 1)
    conn.release()


def test_a_delivery_held_for_its_countdown_is_not_stuck(fleet):  # noqa: F811
    fleet.dispatch_attempt("a2")
    app.send_task("benchfarm.run_job", args=[{"attempt_id": "a2"}], queue="device.A15", countdown=3600)
    conn = _take("device.A15")
    out = Reconciled()
    redeliver_stale(fleet, app, 0, out)
    assert out.redelivered == [] and fleet.r.hlen("unacked") == 1
    conn.release()

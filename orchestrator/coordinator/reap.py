"""Recovery: attempts whose lease expired, attempts the broker lost, runs nobody finalised."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.dispatch import retry_or_fail
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.coordinator.record import lock_open_attempt
from orchestrator.store.db import session as db_session
from orchestrator.store.models import Attempt, Job, Run, utcnow
from orchestrator.store.states import ATTEMPT_OPEN, JOB_TERMINAL

# attempts open this long whose Redis record is gone were lost by the broker (reap_lost)
LOST_GRACE_S = 120
LOST_CHECK_EVERY_S = 60
LOST_BATCH = 5000
_last_lost_check = 0.0


def reap(fleet: Fleet) -> tuple[list[str], Outbox]:
    """Requeue the jobs of every attempt whose device lease expired (agent dead, device lost)."""
    outbox = Outbox()
    fenced = []
    for lease in fleet.reap_expired():
        with db_session() as s:
            attempt = lock_open_attempt(s, lease.attempt_id)
            if attempt is None:
                continue
            attempt.state = "fenced"
            attempt.error_category = "device_lost"
            attempt.error = f"lease on {lease.device_id} expired (token {lease.token}): no heartbeat"
            attempt.finished_at = utcnow()
            job = attempt.job
            if job.state not in JOB_TERMINAL:
                retry_or_fail(s, job, fleet, outbox, "device_lost", attempt.error)
            finalize_if_done(s, job.run_id, outbox, fleet)
            outbox.stage(s)
            fenced.append(attempt.id)
    global _last_lost_check
    if time.monotonic() - _last_lost_check >= LOST_CHECK_EVERY_S:
        _last_lost_check = time.monotonic()
        fenced += reap_lost(fleet, outbox)
    finalize_stragglers(fleet, outbox)
    return fenced, outbox


def reap_lost(fleet: Fleet, outbox: Outbox, grace_s: float = LOST_GRACE_S) -> list[str]:
    """Retry attempts whose Redis record is gone: the broker lost its data (a restart
    without persistence), and with it the queued message and any lease. An open attempt's
    record is written before its row commits, so a missing one is never a race; without
    this pass such a job would wait for a message that no longer exists, for ever. Should
    the agent of a "running" one still be alive, its late report is rejected (fenced)."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with db_session() as s:
        rows = s.execute(select(Attempt.id).where(Attempt.state.in_(ATTEMPT_OPEN), Attempt.dispatched_at < cutoff)
                         .order_by(Attempt.dispatched_at).limit(LOST_BATCH)).scalars().all()
    if not rows:
        return []
    lost = fleet.attempts.missing(rows)
    done = []
    for attempt_id in lost:
        with db_session() as s:
            attempt = lock_open_attempt(s, attempt_id)
            if attempt is None or fleet.attempt_state(attempt_id):
                continue
            attempt.state, attempt.error_category, attempt.finished_at = "fenced", "broker_lost", utcnow()
            attempt.error = "the broker lost this attempt's message and claim (Redis data loss): retried"
            job = attempt.job
            if job.state not in JOB_TERMINAL:
                retry_or_fail(s, job, fleet, outbox, "broker_lost", attempt.error)
            finalize_if_done(s, job.run_id, outbox, fleet)
            outbox.stage(s)
            done.append(attempt_id)
    return done


def finalize_stragglers(fleet: Fleet, outbox: Outbox) -> list[str]:
    """Finalise runs whose jobs are all terminal but that nobody finalised: under READ
    COMMITTED two coordinators recording a run's last two jobs at once each still see the
    other's job open, and neither finalises. The reaper's pass closes that gap."""
    open_job = select(Job.id).where(Job.run_id == Run.id, Job.state.not_in(JOB_TERMINAL)).exists()
    with db_session() as s:
        stuck = list(s.scalars(select(Run.id).where(Run.finalized.is_(False), ~open_job).limit(100)))
    done = []
    for run_id in stuck:
        with db_session() as s:
            if finalize_if_done(s, run_id, outbox, fleet):
                done.append(run_id)
    return done



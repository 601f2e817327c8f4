"""Celery tasks: thin wrappers over domain code (orchestrator.coordinator, the export pipeline,
agents.runner, agents.health_check). Payloads are JSON: ids and plain parameters, never objects.

Heavy imports (torch, executorch) happen inside the task bodies so that a worker that
only records results never loads them.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.celery_app import COORDINATOR_QUEUE, app
from orchestrator.coordinator import exports, failsafe, record
from orchestrator.coordinator import reap as reaping
from orchestrator.observability import metrics
from orchestrator.pr import hooks

log = logging.getLogger("benchfarm.tasks")
# every Celery process is a composition root: PR verification and its webhook hook into the coordinator
hooks.install()


# A coordinator task that cannot reach the database or Redis is retried (with backoff,
# without limit) instead of failing: Celery would acknowledge a failed task and the
# agent's report — the only copy of a result — would be gone.
TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, redis.ConnectionError,
             redis.TimeoutError)
ANSWER_RETRY = {"max_retries": 60, "interval_start": 0.5, "interval_step": 1, "interval_max": 10}
COORDINATOR_TASK = {"acks_late": True, "autoretry_for": TRANSIENT, "retry_backoff": 1, "retry_backoff_max": 30,
                    "retry_jitter": True, "max_retries": None}


@lru_cache(maxsize=1)
def _fleet() -> Fleet:
    return Fleet.from_url(config.redis_url())


@app.task(name="benchfarm.export", acks_late=True)
def export(key: str, request: dict[str, Any]) -> None:
    """Exporter queue: lower one artifact, then tell the coordinator (``key``: the request's key)."""
    from orchestrator.export.lowering import ExporterUnavailable
    from orchestrator.export.pipeline import ExportRequest, export_artifact
    from orchestrator.export.recipe import zoo_code_identity
    from orchestrator.export.sources import Source

    req = ExportRequest(**request)
    try:
        # the Redis lock makes concurrent exporters of one artifact export it once; the mark
        # tells the reconciler this export is alive (a dead exporter's message is re-sent)
        with _fleet().exporters.working(key):
            art, hit = export_artifact(req, redis_client=_fleet().r)
        metrics.EXPORT_CACHE.labels("hit" if hit else "miss").inc()
        if Source.parse(req.source).kind == "zoo":
            _remember(key, art.key, zoo_code_identity())
        # the exporter keys the artifact (a torch source's fingerprint imports its code)
        outcome, meta = "ok", dict(art.meta, cache_hit=hit, artifact_key=art.key)
    except ExporterUnavailable as exc:
        outcome, meta = "unavailable", {"error": str(exc)}
    except Exception as exc:  # an export failure is a property of the model: report it
        log.exception("export of %s failed", key)
        outcome, meta = "failed", {"error": f"{type(exc).__name__}: {exc}"}
    # the only copy of the answer: ride out a broker blip rather than fail (and be acknowledged)
    app.send_task("benchfarm.export_done", args=[key, outcome, meta], queue=COORDINATOR_QUEUE, priority=0,
                  retry=True, retry_policy=ANSWER_RETRY)


def _remember(request_key: str, artifact_key: str, identity: str) -> None:
    """What this exporter keyed a zoo request to, so the next submit of it skips the round trip
    (``coordinator.exports.remembered_artifact``); without it the coordinator just asks again."""
    try:
        _fleet().export_memo.remember(request_key, artifact_key, identity)
    except redis.RedisError:
        log.warning("cannot remember the export of %s", request_key, exc_info=True)


@app.task(name="benchfarm.export_done", **COORDINATOR_TASK)
def export_done(key: str, outcome: str, meta: dict[str, Any]) -> None:
    try:
        outbox = exports.export_done(key, outcome, meta, _fleet())
    except TRANSIENT:
        raise
    except Exception as exc:  # permanent: every redelivery would fail alike; the jobs must not wait for ever
        log.exception("cannot apply the export answer for %s: failing its jobs", key)
        outbox = failsafe.fail_export(key, exc, _fleet())
    outbox.send(app)


@app.task(name="benchfarm.run_job", acks_late=True)
def run_job(payload: dict[str, Any]) -> None:
    """Device queue: executed by the device worker that owns one device."""
    from agents.runner import execute

    execute(payload)


@app.task(name="benchfarm.health_check", acks_late=True)
def health_check(request: dict[str, Any]) -> None:
    """Per-device queue (``device-id.<id>``): the golden health check, run by the device's own
    worker between its benchmarks (agents.health_check)."""
    from agents.health_check import execute

    execute(request)


@app.task(name="benchfarm.attempt_started", **COORDINATOR_TASK)
def attempt_started(payload: dict[str, Any]) -> None:
    record.attempt_started(payload)


@app.task(name="benchfarm.record_attempt", **COORDINATOR_TASK)
def record_attempt(payload: dict[str, Any]) -> None:
    try:
        outcome, outbox = record.record_attempt(payload, _fleet())
    except TRANSIENT:
        raise
    except Exception as exc:  # permanent: every redelivery would fail alike; the job must not wait for ever
        log.exception("cannot record the report of attempt %s: failing the attempt", payload.get("attempt_id"))
        outcome, outbox = failsafe.fail_attempt(payload, exc, _fleet())
    if outcome.job is not None:
        metrics.observe_recorded(outcome.job, outcome.retried)
    if not outcome.accepted:
        log.warning("rejected report for attempt %s: %s", payload.get("attempt_id"), outcome.reason)
    outbox.send(app)


@app.task(name="benchfarm.reap", **COORDINATOR_TASK)
def reap() -> None:
    fenced, outbox = reaping.reap(_fleet())
    metrics.LEASE_REAPS.inc(len(fenced))
    if fenced:
        log.warning("reaped %d expired leases: %s", len(fenced), fenced)
    outbox.send(app)


@app.task(name="benchfarm.nightly_trigger", acks_late=True)
def nightly_trigger(schedule_name: str) -> None:
    """Sent by the beat (``benchfarm scheduler``): submit the schedule's run, once per slot."""
    from orchestrator.scheduling.trigger import fire

    fire(schedule_name, _fleet(), app)

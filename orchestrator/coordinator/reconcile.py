"""The reconciler: work nobody would finish by itself, found within minutes.

Two kinds of stuck work are left after the lease reaper (``reap``), which only sees attempts a
device had claimed:

- **an outbox batch still in the database** a while after its commit: its process died (or
  lost the broker) between commit and send. Its messages are sent now.
- **a message a consumer took and never finished**: the broker keeps it "unacked" for its
  visibility timeout (an hour: benchmarks run long), so a device worker killed before claiming
  its job, or an exporter killed mid-export, used to hold its work for that hour. Here a
  delivery older than ``after_s`` (past any countdown) is re-published when its consumer is
  provably not working on it: a run_job whose attempt is still unclaimed, an export whose
  in-progress mark (``ExporterRegistry.working``) is gone, a coordinator task (they take
  milliseconds). A re-published copy cannot run twice: the attempt's claim is taken once, an
  export answer finds its waiting jobs once, a report is recorded once.

The broker's unacked entries are kombu's Redis transport's (``unacked`` hash, ``unacked_index``
sorted set by delivery time): benchfarm's broker is Redis, and this is the one module reading them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.outbox import Outbox
from orchestrator.store.db import session as db_session
from orchestrator.store.models import OutboxBatch, utcnow

log = logging.getLogger("benchfarm.reconcile")

UNACKED, UNACKED_INDEX = "unacked", "unacked_index"
COORDINATOR_TASKS = frozenset({"benchfarm.record_attempt", "benchfarm.attempt_started", "benchfarm.export_done",
                               "benchfarm.reap"})
# a device worker may hold a job unclaimed while its device cools down (<= 120 s) and is
# health-checked; longer than that, and past any countdown, the consumer is dead or stuck
DEFAULT_AFTER_S = 300.0
DEFAULT_EVERY_S = 30.0
# a live sender sends within milliseconds of its commit
DEFAULT_OUTBOX_GRACE_S = 30.0
BATCH = 200


def _env_s(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def every_s() -> float:
    """How often the coordinator reconciles (``BENCHFARM_RECONCILE_EVERY_S``)."""
    return _env_s("BENCHFARM_RECONCILE_EVERY_S", DEFAULT_EVERY_S)


def after_s() -> float:
    """How old an unfinished delivery must be to be re-sent (``BENCHFARM_RECONCILE_AFTER_S``)."""
    return _env_s("BENCHFARM_RECONCILE_AFTER_S", DEFAULT_AFTER_S)


def outbox_grace_s() -> float:
    return _env_s("BENCHFARM_OUTBOX_GRACE_S", DEFAULT_OUTBOX_GRACE_S)


@dataclass
class Reconciled:
    outbox_batches: int = 0
    redelivered: list[str] = field(default_factory=list)  # "task:what" per re-published message
    dropped: int = 0  # unacked copies of attempts already finished, fenced or cancelled


def reconcile(fleet: Fleet, app: Any, after: float | None = None, grace: float | None = None) -> Reconciled:
    out = Reconciled()
    out.outbox_batches = resend_outbox(app, outbox_grace_s() if grace is None else grace)
    redeliver_stale(fleet, app, after_s() if after is None else after, out)
    if out.outbox_batches or out.redelivered:
        log.warning("reconciled: %d outbox batches sent, redelivered %s", out.outbox_batches, out.redelivered)
    return out


def resend_outbox(app: Any, grace_s: float) -> int:
    """Send the outbox batches older than ``grace_s`` (their process never did)."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with db_session() as s:
        rows = list(s.scalars(select(OutboxBatch).where(OutboxBatch.created_at < cutoff)
                              .order_by(OutboxBatch.created_at).limit(BATCH)))
    for row in rows:
        Outbox.from_row(row).send(app)  # and deletes the row
    return len(rows)


def _decode(raw: str) -> tuple[str, list[Any], dict[str, Any], float, dict[str, Any]] | None:
    """(task, args, kwargs, eta epoch, message) of an unacked entry, or None when it is not a task."""
    try:
        message, _exchange, _routing_key = json.loads(raw)
        headers, props = message.get("headers") or {}, message.get("properties") or {}
        body = message["body"]
        if props.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        eta = datetime.fromisoformat(headers["eta"]).timestamp() if headers.get("eta") else 0.0
        return str(headers.get("task", "")), list(args), dict(kwargs), eta, message
    except (ValueError, KeyError, TypeError):
        return None


def _verdict(task: str, args: list[Any], fleet: Fleet) -> tuple[str, str]:
    """("redeliver" | "drop" | "keep", what) for a stale delivery of ``task``."""
    if task == "benchfarm.run_job" and args and isinstance(args[0], dict):
        attempt_id = str(args[0].get("attempt_id", ""))
        state = fleet.attempt_state(attempt_id)
        if state == "dispatched":
            return "redeliver", attempt_id
        # claimed: the lease reaper owns it; finished, fenced, cancelled or gone: nothing to run
        return ("keep" if state == "claimed" else "drop"), attempt_id
    if task == "benchfarm.export" and args:
        request = str(args[0])
        return ("keep" if fleet.exporters.in_progress(request) else "redeliver"), request
    if task in COORDINATOR_TASKS:
        return "redeliver", task
    return "keep", task  # health checks and triggers: the broker's own timeout is enough


def redeliver_stale(fleet: Fleet, app: Any, after: float, out: Reconciled) -> None:
    """Re-publish (as a fresh message) each delivery taken more than ``after`` s ago whose
    consumer is not working on it, then forget the stale one."""
    r: Any = fleet.r  # the broker's own keys, decoded (the fleet's client decodes responses)
    now = time.time()
    for tag in r.zrangebyscore(UNACKED_INDEX, 0, now - after, start=0, num=BATCH):
        raw = r.hget(UNACKED, tag)
        decoded = _decode(raw) if raw else None
        if decoded is None:
            continue
        task, args, kwargs, eta, message = decoded
        routing_key = str(json.loads(raw)[2])
        if eta > now - after:
            continue  # held for its countdown, not stuck
        verdict, what = _verdict(task, args, fleet)
        if verdict == "keep":
            continue
        if verdict == "redeliver":
            info = (message.get("properties") or {}).get("delivery_info") or {}
            app.send_task(task, args=args, kwargs=kwargs, queue=info.get("routing_key") or routing_key,
                          priority=(message.get("properties") or {}).get("priority"))
            out.redelivered.append(f"{task.rsplit('.', 1)[-1]}:{what}")
        else:
            out.dropped += 1
        with r.pipeline() as pipe:  # kombu's own ack: the consumer, should it live, acks nothing
            pipe.zrem(UNACKED_INDEX, tag)
            pipe.hdel(UNACKED, tag)
            pipe.execute()

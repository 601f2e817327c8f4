"""Load capacity records from the database and the live state from Redis."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis
from sqlalchemy import func, or_, select

from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.capacity.model import DeviceEventRec, JobRec
from orchestrator.capacity.report import Live
from orchestrator.celery_app import device_queue
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, DeviceEvent, Job, Run

log = logging.getLogger("benchfarm.capacity")
# orchestrator.celery_app: priority_steps 0..9 with sep ":"; kombu names step 0 after the
# queue itself and step n>0 "<queue>:<n>" (kombu.transport.redis.Channel._q_for_pri)
PRIORITY_STEPS = range(10)


def _ts(dt: datetime | None) -> float | None:
    # the database stores naive UTC
    return None if dt is None else dt.replace(tzinfo=UTC).timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def load_records(start: float, end: float) -> tuple[list[DeviceEventRec], list[JobRec]]:
    """Device events of the window (plus each device's last event before it, which sets
    the opening state) and the jobs touching the window or still open."""
    lo, hi = _dt(start), _dt(end)
    with session() as s:
        before = (select(DeviceEvent.device_id, func.max(DeviceEvent.at).label("at"))
                  .where(DeviceEvent.at < lo).group_by(DeviceEvent.device_id).subquery())
        opening = s.scalars(select(DeviceEvent).join(
            before, (DeviceEvent.device_id == before.c.device_id) & (DeviceEvent.at == before.c.at)))
        inside = s.scalars(select(DeviceEvent).where(DeviceEvent.at >= lo, DeviceEvent.at <= hi))
        events = [DeviceEventRec(e.device_id, e.device_class, e.host, e.state, _ts(e.at) or 0.0)
                  for e in [*opening, *inside]]
        rows = s.execute(select(Job, Run.trigger).join(Run, Run.id == Job.run_id).where(or_(
            Job.finished_at.is_(None), Job.finished_at >= lo)).where(Job.created_at <= hi)).all()
        job_ids = [j.id for j, _ in rows]
        service: dict[str, float] = {}
        for i in range(0, len(job_ids), 500):  # bounded IN lists
            for a in s.scalars(select(Attempt).where(Attempt.job_id.in_(job_ids[i:i + 500]),
                                                     Attempt.started_at.is_not(None),
                                                     Attempt.finished_at.is_not(None))):
                if a.finished_at is not None and a.started_at is not None:  # the query's filter, for the type checker
                    service[a.job_id] = service.get(a.job_id, 0.0) + (a.finished_at - a.started_at).total_seconds()
        jobs = [JobRec(j.id, j.run_id, j.device_class, trigger, j.state, _ts(j.created_at) or 0.0,
                       _ts(j.queued_at), _ts(j.started_at), _ts(j.finished_at), service.get(j.id))
                for j, trigger in rows]
    return events, jobs


def queue_depths(client: redis.Redis, classes: set[str]) -> dict[str, dict[int, int]]:
    """LLEN of every priority list of every class queue (messages waiting for a device)."""
    names = [(cls, p, device_queue(cls) + (f":{p}" if p else "")) for cls in sorted(classes)
             for p in PRIORITY_STEPS]
    with client.pipeline() as pipe:
        for _, _, name in names:
            pipe.llen(name)
        lengths = pipe.execute()
    out: dict[str, dict[int, int]] = {}
    for (cls, p, _), n in zip(names, lengths, strict=True):
        if n:
            out.setdefault(cls, {})[p] = int(n)
    return out


def queue_classes(client: redis.Redis) -> set[str]:
    """Classes with a device queue in Redis (kombu keeps a binding set per queue)."""
    classes = set()
    for key in client.scan_iter(match="device.*", count=500):
        name = key.decode() if isinstance(key, bytes) else key
        classes.add(name.removeprefix("device.").split(":", 1)[0])
    return classes


def drain_pending(url: str | None = None) -> None:
    """Copy device events the coordinator has not drained yet (it does so every 5 s, and
    not after it stops), so the report is current; idempotent, skipped without Redis."""
    from orchestrator.coordinator.device_history import drain_device_events

    try:
        drain_device_events(Fleet.from_url(url or config.redis_url()))
    except redis.RedisError as exc:
        log.warning("device events not drained (Redis unavailable): %s", exc)


def load_live(url: str | None = None) -> Live:
    """Device states and queue depths now; an empty 'unavailable' state when Redis is down
    (the history part of the report still stands)."""
    fleet = Fleet.from_url(url or config.redis_url())
    try:
        devices = fleet.devices()
        classes = {d.get("device_class", "") for d in devices} | queue_classes(fleet.r)
        classes.discard("")
        return Live(devices, queue_depths(fleet.r, classes))
    except redis.RedisError as exc:
        log.warning("live fleet state unavailable: %s", exc)
        return Live(source=f"unavailable ({exc})")

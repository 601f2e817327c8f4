"""The coordinator / exporter worker process (``benchfarm worker``).

Besides consuming its queues it runs two housekeeping loops: the lease reaper (every
few seconds, requeues jobs whose device stopped heartbeating) when it serves the
coordinator queue, and an exporter heartbeat per ``export.<platform>`` queue it serves,
so the coordinator knows which exporter platforms are alive (e.g. macOS for MPS) and
which code they run (a zoo export they keyed before need not be asked for again).
A coordinator also sends the periodic golden health check to each device once per
``BENCHFARM_HEALTH_CHECK_EVERY_S`` (orchestrator.scheduling.health; deduplicated across
coordinators in Redis).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from typing import Any

from celery.signals import task_retry, worker_ready, worker_shutdown

from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.celery_app import COORDINATOR_QUEUE, app
from orchestrator.coordinator import reconcile as reconciling
from orchestrator.coordinator.device_history import drain_device_events
from orchestrator.coordinator.reap import reap
from orchestrator.export import isolated, trust
from orchestrator.export.recipe import zoo_code_identity
from orchestrator.observability import metrics
from orchestrator.observability.logs import setup_logging
from orchestrator.scheduling import health

log = logging.getLogger("benchfarm.worker")
REAP_EVERY_S = 5.0
RECONCILE_CLAIM = "bf:reconcile-turn"
# device events are copied (and leased attempts marked running) this often: a job shows
# "running" within about this long of its lease
COPY_EVERY_S = 0.5
_stop = threading.Event()
# Celery's "Task ... received" / "... succeeded in" lines: two per message at INFO, each formatted
# and written by our (JSON) handler, twice per job on the coordinator
TASK_LOG_LEVEL_ENV = "BENCHFARM_TASK_LOG_LEVEL"
TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")


def beat_exporters(fleet: Fleet, platforms: list[str]) -> None:
    """This exporter is alive for each platform, running the code ``zoo_code_identity`` names."""
    for p in platforms:
        fleet.exporters.heartbeat(p, ttl=REAP_EVERY_S * 6, identity=zoo_code_identity())


@functools.cache  # one warning per process for a bad value, however often it is asked
def _task_log_level(raw: str) -> int:
    level = logging.getLevelName(raw.strip().upper())
    if isinstance(level, int):
        return level
    log.warning("%s=%r is not a log level: using WARNING", TASK_LOG_LEVEL_ENV, raw)
    return logging.WARNING


def quiet_task_lines() -> None:
    """Celery's per-task lines at ``BENCHFARM_TASK_LOG_LEVEL`` (default WARNING: off; INFO brings
    them back). Failures are errors and stay; Celery logs a retry at INFO too, so a quiet worker
    says it in a warning of its own: a task retrying a transient error for ever stays visible."""
    level = _task_log_level(os.environ.get(TASK_LOG_LEVEL_ENV) or "WARNING")
    for name in TASK_LOGGERS:
        logging.getLogger(name).setLevel(level)
    task_retry.connect(_retry_line, weak=False, dispatch_uid="benchfarm.retry_line")


def _retry_line(request: Any = None, reason: object = None, **_kw: object) -> None:
    if not logging.getLogger(TASK_LOGGERS[0]).isEnabledFor(logging.INFO):  # else Celery's own line says it
        log.warning("task %s[%s] retry: %s", getattr(request, "task", "?"), getattr(request, "id", "?"), reason)


def _housekeeping(queues: list[str]) -> None:
    fleet = Fleet.from_url(config.redis_url())
    platforms = [q.split(".", 1)[1] for q in queues if q.startswith("export.")]
    health_every = health.check_every_s()
    last_health_sweep = last_reap = last_reconcile = 0.0
    holder = f"{socket.gethostname()}:{os.getpid()}"
    while not _stop.wait(COPY_EVERY_S if COORDINATOR_QUEUE in queues else REAP_EVERY_S):
        try:
            if COORDINATOR_QUEUE in queues and fleet.events.take_copier(holder):
                try:
                    drain_device_events(fleet)
                finally:
                    fleet.events.drop_copier(holder)
            if time.monotonic() - last_reap < REAP_EVERY_S:
                continue
            last_reap = time.monotonic()
            beat_exporters(fleet, platforms)
            if COORDINATOR_QUEUE in queues:
                fenced, outbox = reap(fleet)
                metrics.LEASE_REAPS.inc(len(fenced))
                if fenced:
                    log.warning("reaped expired leases: %s", fenced)
                outbox.send(app)
                if time.monotonic() - last_reconcile >= reconciling.every_s():
                    last_reconcile = time.monotonic()
                    # one coordinator per interval: two would re-send the same stale message twice
                    if fleet.claims.claim(RECONCILE_CLAIM, "1", max(1.0, reconciling.every_s() * 0.8)):
                        reconciling.reconcile(fleet, app)
                if time.monotonic() - last_health_sweep >= min(health.SWEEP_EVERY_S, health_every):
                    health.periodic_sweep(fleet, app, health_every)
                    last_health_sweep = time.monotonic()
        except Exception:
            log.warning("housekeeping failed", exc_info=True)


def start(queues: list[str], concurrency: int = 2, pool: str = "threads", hostname: str = "") -> None:
    setup_logging()
    metrics.serve_coordinator()
    fleet = Fleet.from_url(config.redis_url())
    beat_exporters(fleet, [q.split(".", 1)[1] for q in queues if q.startswith("export.")])
    if any(q.startswith("export.") for q in queues) and trust.model_packages():
        # this exporter may get import: sources: its zygote imports torch while the worker starts
        # (a worker without registered packages never starts one)
        isolated.prestart()

    @worker_ready.connect
    def _ready(**_kw: object) -> None:
        if COORDINATOR_QUEUE in queues:
            quiet_task_lines()
        threading.Thread(target=_housekeeping, args=(queues,), daemon=True, name="housekeeping").start()

    @worker_shutdown.connect
    def _down(**_kw: object) -> None:
        _stop.set()
        if COORDINATOR_QUEUE in queues:
            try:  # the last seconds of device history, before a private Redis goes away
                drain_device_events(fleet)
            except Exception:
                log.warning("final device-event copy failed", exc_info=True)

    argv = ["worker", f"--queues={','.join(queues)}", f"--pool={pool}", f"--concurrency={concurrency}",
            "--loglevel=INFO", "--without-gossip", "--without-mingle"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)

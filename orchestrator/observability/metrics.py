"""Prometheus metrics of the coordinator and the agents (prometheus-client).

Two kinds:
- *counters and histograms* counted where things happen: terminal jobs, retries, lease
  reaps and export cache hits in the coordinator worker; attempts, their durations,
  step durations, quarantines and health checks in the agents' device workers;
- *state gauges* read from the shared state at scrape time (job counts by state from
  the database, device states and queue depth per class and priority from Redis), by
  :class:`StateCollector`, so any process can serve them without double counting.

Agents are multi-process (a supervisor plus one Celery worker process per device), so
the agent uses prometheus-client's multiprocess mode: the supervisor creates a private
directory and puts it in ``PROMETHEUS_MULTIPROC_DIR`` before it starts any device
worker; workers inherit it and write their counters to memory-mapped files there; the
supervisor's ``/metrics`` (``BENCHFARM_METRICS_PORT``, 0/unset = off) aggregates the
files (counters of workers that exited keep counting) and adds its devices' states.
Only counters and histograms are counted in workers: they aggregate by sum without a
per-process mode to choose. The coordinator worker is one process (thread pool) and
serves the default registry on the same env port; the API mounts :func:`asgi_app`.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:  # the coordinator calls in; this module does not import it
    from orchestrator.coordinator.record import Recorded

log = logging.getLogger("benchfarm.metrics")
PORT_ENV = "BENCHFARM_METRICS_PORT"
# benchmarks last from seconds (host CPU) to tens of minutes (large models on a phone)
DURATION_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)

JOBS = Counter("benchfarm_jobs", "Jobs that reached a terminal state.", ["state", "device_class"])
RETRIES = Counter("benchfarm_retries", "Jobs sent back to the queue after an infrastructure failure.",
                  ["device_class"])
LEASE_REAPS = Counter("benchfarm_lease_reaps", "Device leases reaped after their heartbeat stopped.")
EXPORT_CACHE = Counter("benchfarm_export_cache_requests", "Export requests by artifact cache outcome.", ["result"])
JOB_DURATION = Histogram("benchfarm_job_duration_seconds", "Job time from a device taking it to its end.",
                         ["device_class", "state"], buckets=DURATION_BUCKETS)
JOB_WAIT = Histogram("benchfarm_job_queue_wait_seconds", "Job time from offered to devices to taken by one.",
                     ["device_class", "trigger"], buckets=DURATION_BUCKETS)
# counted in the agents' device workers
ATTEMPTS = Counter("benchfarm_attempts", "Attempts a device worker finished, by outcome.", ["device_class", "outcome"])
ATTEMPT_DURATION = Histogram("benchfarm_attempt_duration_seconds",
                             "Attempt time on the device (sum of its driver steps).",
                             ["device_class", "outcome"], buckets=DURATION_BUCKETS)
STEP_DURATION = Histogram("benchfarm_attempt_step_duration_seconds", "Duration of each driver step of attempts.",
                          ["step"], buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1200))
QUARANTINES = Counter("benchfarm_quarantines", "Devices quarantined after repeated infrastructure failures.",
                      ["device_class"])
HEALTH_CHECKS = Counter("benchfarm_health_checks", "Golden health checks a device worker ran, by verdict "
                        "(passed | failed | inconclusive).", ["device_class", "outcome"])


def observe_attempt(device_class: str, report: dict[str, Any]) -> None:
    """Count one finished attempt from the report the agent sends (outcome, timeline)."""
    outcome = report.get("outcome", "infra")
    steps = report.get("timeline") or []
    ATTEMPTS.labels(device_class, outcome).inc()
    ATTEMPT_DURATION.labels(device_class, outcome).observe(sum(float(s.get("duration_s", 0)) for s in steps))
    for s in steps:
        STEP_DURATION.labels(s.get("step", "?")).observe(float(s.get("duration_s", 0)))


def observe_recorded(job: Recorded, retried: bool) -> None:
    """After the coordinator recorded an attempt: count the job if it turned terminal."""
    from orchestrator.store.states import JOB_TERMINAL

    if retried:
        RETRIES.labels(job.device_class).inc()
    if job.state not in JOB_TERMINAL:
        return
    JOBS.labels(job.state, job.device_class).inc()
    if job.run_s is not None:
        JOB_DURATION.labels(job.device_class, job.state).observe(job.run_s)
    if job.queued_s is not None:
        JOB_WAIT.labels(job.device_class, job.trigger).observe(job.queued_s)


class StateCollector:
    """Gauges read at scrape time: jobs by state (database), devices by class and state and
    queue depth by class and priority (Redis). A part that does not answer is left out."""

    def __init__(self, redis_url: str | None = None, with_jobs: bool = True, agent: str | None = None):
        self.redis_url, self.with_jobs, self.agent = redis_url, with_jobs, agent

    def describe(self) -> list[Metric]:
        return []  # values come from outside: never collect at registration time

    def collect(self) -> Iterator[Metric]:
        if self.with_jobs:
            yield from self._jobs()
        yield from self._fleet()

    def _jobs(self) -> Iterator[Metric]:
        from sqlalchemy import func, select

        from orchestrator.store.db import session
        from orchestrator.store.models import Job

        try:
            with session() as s:
                rows = s.execute(select(Job.state, Job.device_class, func.count()).group_by(
                    Job.state, Job.device_class)).all()
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("metrics: job counts unavailable: %s", exc)
            return
        g = GaugeMetricFamily("benchfarm_jobs_in_state", "Jobs currently in each state.",
                              labels=["state", "device_class"])
        for state, cls, n in rows:
            g.add_metric([state, cls], n)
        yield g

    def _fleet(self) -> Iterator[Metric]:
        import redis

        from device_inventory.fleet import Fleet
        from orchestrator import config
        from orchestrator.capacity.load import queue_classes, queue_depths

        try:
            fleet = Fleet.from_url(self.redis_url or config.redis_url())
            devices = [d for d in fleet.devices() if self.agent is None or d.get("agent") == self.agent]
            classes = {d.get("device_class", "") for d in devices}
            if self.agent is None:
                classes |= queue_classes(fleet.r)
            depths = queue_depths(fleet.r, classes - {""})
        except redis.RedisError as exc:
            log.warning("metrics: fleet state unavailable: %s", exc)
            return
        counts: dict[tuple[str, str], int] = {}
        for d in devices:
            key = (d.get("device_class", ""), d.get("state", ""))
            counts[key] = counts.get(key, 0) + 1
        g = GaugeMetricFamily("benchfarm_devices", "Devices by class and state.", labels=["device_class", "state"])
        for (cls, state), n in sorted(counts.items()):
            g.add_metric([cls, state], n)
        yield g
        q = GaugeMetricFamily("benchfarm_queue_depth", "Messages waiting in a device class queue, by priority.",
                              labels=["device_class", "priority"])
        for cls in sorted(classes - {""}):
            for p, n in sorted(depths.get(cls, {}).items()):
                q.add_metric([cls, str(p)], n)
        yield q


_state_collector: StateCollector | None = None


def install_state_collector() -> None:
    """Add the state gauges to the default registry once (coordinator worker and API)."""
    global _state_collector
    if _state_collector is None:
        _state_collector = StateCollector()
        REGISTRY.register(_state_collector)


def exposition() -> tuple[bytes, str]:
    """(body, content type) of the coordinator's metrics, for the API's ``/metrics``."""
    from prometheus_client import CONTENT_TYPE_LATEST

    install_state_collector()
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def asgi_app() -> Any:
    """An ASGI app serving the coordinator's metrics (``app.mount("/metrics", asgi_app())``)."""
    from prometheus_client import make_asgi_app

    install_state_collector()
    return make_asgi_app(REGISTRY)


def _port() -> int:
    raw = os.environ.get(PORT_ENV, "0").strip() or "0"
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError(f"{PORT_ENV}={raw!r} is not a TCP port (0 = no metrics server)")
    return int(raw)


def serve_coordinator() -> int:
    """Start the coordinator worker's ``/metrics`` on ``BENCHFARM_METRICS_PORT``; returns the port (0 = off)."""
    port = _port()
    if port:
        install_state_collector()
        start_http_server(port)
        log.info("metrics on :%d/metrics", port)
    return port


def serve_agent(agent_name: str) -> int:
    """Start the agent supervisor's ``/metrics`` (multiprocess aggregation); call before
    any device worker starts, so they inherit ``PROMETHEUS_MULTIPROC_DIR``."""
    from prometheus_client import multiprocess

    port = _port()
    if not port:
        return 0
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="benchfarm-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        atexit.register(shutil.rmtree, path, True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    registry.register(StateCollector(with_jobs=False, agent=agent_name))
    start_http_server(port, registry=registry)
    log.info("agent metrics on :%d/metrics (worker files in %s)", port, path)
    return port

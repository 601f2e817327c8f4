"""The one Celery app: configuration and queue names. Tasks live in orchestrator.tasks.

Queues are routed by name, not by task: ``device.<class>`` for benchmarks,
``device-id.<device>`` for one device's health checks, ``export.<platform>`` for
exporters, ``coordinator`` for recording and bookkeeping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from kombu import Queue
from kombu.transport import redis as kombu_redis

from orchestrator import config

COORDINATOR_QUEUE = "coordinator"
# Priorities (Redis transport: 0 is served first). PR work overtakes queued nightly work.
PRIORITY = {"pr": 0, "manual": 3, "nightly": 6}


def device_queue(device_class: str) -> str:
    return f"device.{device_class}"


def device_id_queue(device_id: str) -> str:
    """The queue only one device's worker consumes (health checks): ``device-id.<sanitised id>``.

    Ids like ``host:<hostname>:0`` hold ':' (the transport's priority separator), so
    everything outside [A-Za-z0-9_.-] becomes '_'."""
    return f"device-id.{re.sub(r'[^A-Za-z0-9_.-]', '_', device_id)}"


def export_queue(platform: str) -> str:
    return f"export.{platform}"


# the payload fields a message's headers name (monitors and ``celery inspect`` show them)
_SUMMARY_FIELDS = ("run_id", "job_id", "attempt_id")


def args_summary(args: list[Any]) -> str:
    """A message's ``argsrepr``: the ids its payload carries, not the payload. Celery's default
    repr walked the whole payload (a report carries the result document) on every publish, a
    quarter of a publish's CPU, and put the results into headers that monitors display."""
    first = args[0] if args else None
    if isinstance(first, dict):
        return repr({k: first[k] for k in _SUMMARY_FIELDS if k in first})
    return repr(first)[:80] if isinstance(first, str) else f"<{len(args)} args>"


class _Channel(kombu_redis.Channel):
    """kombu's Redis channel with one client per connection pool instead of one per call.

    kombu builds a new ``redis.Redis`` for every publish, delivery and acknowledgement; its
    construction (a copy of the ~170-entry response-callback table) cost more CPU than the
    commands it then sent (bench/coordinator_cpu.py, worker profile). A client is thread-safe
    (commands borrow pool connections), so the channel's threads share it; a new pool (after a
    disconnect or a fork) gets a new client."""

    _shared: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        shared = self._shared
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared = self._create_client()
        yield shared


class _Transport(kombu_redis.Transport):
    Channel = _Channel


# redis:// and rediss:// brokers get the channel above, named in the app's configuration
# (kombu's transport aliases stay as kombu has them); sentinel:// keeps kombu's own transport
SHARED_CLIENT_SCHEMES = ("redis", "rediss")


def make_app(broker_url: str | None = None) -> Celery:
    url = broker_url or config.redis_url()
    app = Celery("benchfarm", broker=url, backend=None, include=["orchestrator.tasks"])
    if url.partition("://")[0] in SHARED_CLIENT_SCHEMES:
        app.conf.broker_transport = _Transport
    app.conf.update(
        # JSON only: any other serialisation on the broker is refused, never executed.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        # A benchmark is acknowledged after it ran, and a worker holds one message at a
        # time, so a dead agent's work is redelivered and no device hoards a queue.
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=COORDINATOR_QUEUE,
        task_queues=[Queue(COORDINATOR_QUEUE)],
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # separate Redis lists per priority step; workers drain lower numbers first
            "priority_steps": list(range(10)),
            "sep": ":",
            "queue_order_strategy": "priority",
            # benchmarks can run long; lease reaping (not Celery redelivery) recovers
            # a dead agent's job quickly, this only bounds the worst case.
            "visibility_timeout": 3600,
        },
        worker_hijack_root_logger=False,
        # No task events by default: they are three more publishes per task (received, started,
        # succeeded) and one per send, ~0.5 ms of a worker's CPU per task (bench/raw_celery.py), twice
        # per job on the coordinator. Flower turns them on in the workers it watches (enable_events).
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app


app = make_app()

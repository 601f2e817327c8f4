"""The golden health check as a message, and the rechecks of a quarantined device.

Every check is one ``benchfarm.health_check`` message on the device's own queue
(``device-id.<id>``, consumed only by that device's worker), so it runs between two
benchmarks of that device, never beside one. What a check does is ``agents.health_check``;
the coordinator's periodic sweep and ``benchfarm devices check`` build their requests here too.

After quarantine the runner calls :func:`schedule_recheck` where it quarantines a device;
a recheck that does not pass schedules the next one, each ``BENCHFARM_HEALTH_RECHECK_S``
(default 300 s) times 2^(n-1), at most :data:`MAX_RECHECKS` times; beyond that the device
waits for the periodic check or an operator. One recheck per device is pending at a time
(``bf:health-recheck:<id>``, ``SET NX``), so a device quarantined twice does not start two
chains.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from celery import Celery

from device_inventory.fleet import Fleet
from orchestrator.celery_app import device_id_queue

log = logging.getLogger("benchfarm.health")

TASK = "benchfarm.health_check"
RECHECK_ENV = "BENCHFARM_HEALTH_RECHECK_S"
EVERY_ENV = "BENCHFARM_HEALTH_CHECK_EVERY_S"
DEFAULT_RECHECK_S = 300.0
DEFAULT_EVERY_S = 6 * 3600.0
# 300 s doubling six times covers ~5 h, about one periodic interval: past that a device
# that keeps failing is left to the periodic check instead of a recheck loop of its own
MAX_RECHECKS = 6
# a pending recheck's marker outlives its countdown by this much (worker restarting, busy)
RECHECK_GRACE_S = 600
TRIGGERS = ("recheck", "periodic", "on_demand")


def recheck_base_s() -> float:
    return float(os.environ.get(RECHECK_ENV, DEFAULT_RECHECK_S))


def check_every_s() -> float:
    return float(os.environ.get(EVERY_ENV, DEFAULT_EVERY_S))


def new_request(device_id: str, trigger: str, recheck: int = 0) -> dict[str, Any]:
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown health check trigger {trigger!r} (known: {', '.join(TRIGGERS)})")
    return {"check_id": f"hc-{uuid.uuid4().hex[:20]}", "device_id": device_id, "trigger": trigger,
            "recheck": recheck, "requested_at": time.time()}


def send(app: Celery, request: dict[str, Any], countdown: float = 0.0, expires_s: float | None = None) -> None:
    app.send_task(TASK, args=[request], queue=device_id_queue(request["device_id"]), priority=0,
                  countdown=countdown if countdown > 0 else None, expires=expires_s)


def recheck_delay_s(recheck: int) -> float:
    return min(recheck_base_s() * 2 ** max(recheck - 1, 0), check_every_s())


def schedule_recheck(fleet: Fleet, app: Celery, device_id: str, recheck: int = 1) -> dict[str, Any] | None:
    """Queue recheck number ``recheck`` of a quarantined device; None when the chain is exhausted,
    one is already pending, or the broker cannot be reached (never raises: the caller is in the
    middle of reporting a benchmark, and the periodic check is the safety net)."""
    if recheck > MAX_RECHECKS:
        log.warning("device %s failed %d rechecks: leaving it to the periodic check or an operator",
                    device_id, MAX_RECHECKS)
        return None
    delay = recheck_delay_s(recheck)
    request = new_request(device_id, "recheck", recheck)
    try:
        if not fleet.health.claim_recheck(device_id, request["check_id"], delay + RECHECK_GRACE_S):
            log.info("device %s already has a recheck pending", device_id)
            return None
        send(app, request, countdown=delay)
    except Exception as exc:  # broker or Redis away: the periodic check catches the device later
        log.warning("could not schedule a health check of %s: %s", device_id, exc)
        return None
    log.info("health check %s of %s in %.0f s (recheck %d/%d)", request["check_id"], device_id, delay,
             recheck, MAX_RECHECKS)
    return request


def recheck_started(fleet: Fleet, request: dict[str, Any]) -> None:
    """A recheck is running: it no longer blocks the next one being scheduled."""
    fleet.health.recheck_started(request["device_id"], request["check_id"])

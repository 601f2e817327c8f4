"""When golden health checks run, from the coordinator: periodically and on demand.

What a check is (the message, the recheck chain after a quarantine) is
``agents.health_schedule``; what it does is ``agents.health_check``.

- periodic: the coordinator's housekeeping calls :func:`periodic_sweep`, which sends a check
  to every registered device that is not offline or in maintenance once per
  ``BENCHFARM_HEALTH_CHECK_EVERY_S`` (default 6 h). The per-device key
  ``bf:health-periodic:<id>`` (``SET NX EX every``) makes several coordinators send one
  check, not one each. A device's first check comes one period after a coordinator first sees
  it: a coordinator (re)start must not hold every device up with checks at once.
- on demand: ``benchfarm devices check [ID ...] [--wait]`` (``agents.health_schedule.send``).
"""

from __future__ import annotations

import logging

from celery import Celery

from agents.health_schedule import check_every_s, new_request, send
from device_inventory.fleet import Fleet

log = logging.getLogger("benchfarm.health")

# the periodic sweep reads every device; more often than this is wasted Redis work
SWEEP_EVERY_S = 30.0


def periodic_sweep(fleet: Fleet, app: Celery, every_s: float | None = None) -> list[str]:
    """Send the periodic check to each due device; returns the ids it sent one to."""
    every = int(every_s if every_s is not None else check_every_s())
    states = fleet.inventory.states()
    # three round trips for the whole fleet (its ids, their states, every candidate's claim), not 2 per device
    claims = fleet.health.claim_periodic_many(
        (d for d, state in states.items() if state not in ("offline", "maintenance")), every)
    sent = []
    for device_id, (first_sight, due) in claims.items():
        if first_sight or not due:
            continue
        # a device whose agent is away does not pile up one stale check per period
        send(app, new_request(device_id, "periodic"), expires_s=every)
        sent.append(device_id)
    if sent:
        log.info("periodic health checks sent to %d devices", len(sent))
    return sent

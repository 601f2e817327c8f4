"""Device conditions as fleet states: a phone with Developer Mode off or without its developer image.

The driver reports the condition in ``Health.condition`` (agents.drivers.ios_developer).
Such a device takes no jobs (a lease needs ``available``) and shows the remedy as its state
reason in ``benchfarm devices``; it returns to service when a later health reading is clean:
before each job its worker reads health anyway, and the agent re-reads it every
``RECHECK_S`` while the device waits, so a fixed phone comes back without a job to prompt it.
"""

from __future__ import annotations

import logging
import os

from agents.protocols import Health
from device_inventory.fleet import CONDITION_STATES, Fleet

log = logging.getLogger("benchfarm.agent")
RECHECK_S = float(os.environ.get("BENCHFARM_CONDITION_RECHECK_S", "30"))
# states a condition may replace: never a quarantine, maintenance or a device at work
REPLACEABLE = ("available", *CONDITION_STATES)


def apply(fleet: Fleet, device_id: str, health: Health, state: str | None = None) -> str:
    """Move the device into or out of a condition state; returns the condition ('' if none).
    ``state``: the device's state, if the caller has just read it."""
    if state is None:
        state = fleet.device(device_id).get("state", "available")
    if health.condition in CONDITION_STATES:
        reason = next((p for p in health.problems if p.startswith(health.condition)), health.condition)
        reason = reason.removeprefix(f"{health.condition}: ")
        current = fleet.device(device_id).get("state_reason", "")
        if state in REPLACEABLE and (state, current) != (health.condition, reason):
            log.warning("device %s: %s: %s", device_id, health.condition, reason)
            fleet.set_state(device_id, health.condition, reason)
        return health.condition
    if state in CONDITION_STATES:
        log.info("device %s: %s fixed, back in service", device_id, state)
        fleet.set_state(device_id, "available", f"{state} fixed")
    return ""

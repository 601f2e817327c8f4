"""The body of ``benchfarm.nightly_trigger``: submit one schedule's run, once per scheduled time.

RedBeat's lock already makes one beat the leader, but a leader that stalls past its lock
timeout, a redelivered message or an operator's manual send could still deliver two
triggers for the same slot. So the trigger claims ``(schedule, scheduled time)`` with a
Redis ``SET NX`` before submitting: the second claim finds the key and does nothing.

The scheduler publishes its schedule definitions to Redis (:func:`publish`), so a worker
needs no schedules file of its own — only access to the spec path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device_inventory import keys
from device_inventory.fleet import Fleet
from orchestrator.scheduling.schedules import ScheduleFile, parse_cron, previous_fire

log = logging.getLogger("benchfarm.scheduling")

# long enough to outlive any redelivery of a slot's trigger; short enough to self-clean
FIRED_TTL_S = 8 * 86400
_CLAIMING = "claiming"


class UnknownSchedule(LookupError):
    pass


@dataclass(frozen=True)
class TriggerOutcome:
    schedule: str
    scheduled_for: datetime
    run_id: str | None  # the run this slot created (None while another trigger is still submitting)
    duplicate: bool


def publish(fleet: Fleet, schedules: ScheduleFile) -> None:
    """Replace the schedule definitions the trigger reads (one transaction)."""
    fleet.claims.publish_schedules({s.name: {"cron": s.cron, "spec": str(s.spec)} for s in schedules.schedules})


def fired_key(schedule: str, scheduled_for: datetime) -> str:
    return keys.schedule_fired(schedule, f"{scheduled_for:%Y-%m-%dT%H:%M}Z")


def fire(schedule: str, fleet: Fleet, app: Any = None, now: datetime | None = None) -> TriggerOutcome:
    """Submit ``schedule``'s spec as a nightly run unless its current slot already has one."""
    from orchestrator.coordinator.submit import submit
    from orchestrator.spec.matrix import loads_spec

    entry = fleet.claims.schedule(schedule)
    if entry is None:
        raise UnknownSchedule(f"no schedule {schedule!r} is published (is `benchfarm scheduler` running?)")
    slot = previous_fire(parse_cron(entry["cron"]), now or datetime.now(UTC))
    key = fired_key(schedule, slot)
    if not fleet.claims.claim(key, _CLAIMING, FIRED_TTL_S):
        existing = fleet.claims.get(key)
        log.info("schedule %s: slot %s already triggered (%s); not submitting again", schedule, slot, existing)
        return TriggerOutcome(schedule, slot, None if existing in (None, _CLAIMING) else existing, True)
    try:
        spec_path = Path(entry["spec"])
        text = spec_path.read_text()
        run_id, outbox = submit(loads_spec(text, str(spec_path)), text, fleet, source=str(spec_path),
                                trigger="nightly", requested_by=f"schedule:{schedule}",
                                meta={"schedule": schedule, "scheduled_for": slot.isoformat()})
    except BaseException:
        # nothing was committed: free the slot so a retry (or the other leader's send) can submit it
        fleet.claims.drop(key)
        raise
    fleet.claims.settle(key, run_id)
    outbox.send(app)
    log.info("schedule %s: slot %s submitted run %s", schedule, slot, run_id)
    return TriggerOutcome(schedule, slot, run_id, False)

"""When checks are sent (real Redis broker, messages read back from the device queues):
periodic checks are deduplicated across coordinators, rechecks back off and are bounded."""

from __future__ import annotations

import json

import pytest

from agents import health_schedule
from device_inventory.fleet import Fleet
from orchestrator.celery_app import app, device_id_queue
from orchestrator.scheduling import health


def queued(fleet: Fleet, device_id: str) -> list[dict]:
    """The health-check messages waiting on a device's own queue (kombu's Redis list)."""
    return [json.loads(m) for m in fleet.r.lrange(device_id_queue(device_id), 0, -1)]


@pytest.fixture
def fleet(hc_env: dict[str, str]) -> Fleet:
    f = Fleet.from_url(hc_env["REDIS_URL"])
    for dev in ("d-avail", "d-quar", "d-maint", "d-off"):
        f.register(dev, {"device_class": "A15"})
    f.set_state("d-quar", "quarantined", "test")
    f.set_state("d-maint", "maintenance", "test")
    f.unregister("d-off")
    return f


def test_periodic_checks_go_once_per_period_whatever_the_number_of_coordinators(
        fleet: Fleet, hc_env: dict[str, str]) -> None:
    other_coordinator = Fleet.from_url(hc_env["REDIS_URL"])
    # first sight starts the clock: a coordinator (re)start does not check every device at once
    assert health.periodic_sweep(fleet, app, every_s=1) == []
    assert health.periodic_sweep(other_coordinator, app, every_s=1) == []
    fleet.r.delete("bf:health-periodic:d-avail", "bf:health-periodic:d-quar")  # the period is over
    sent = health.periodic_sweep(fleet, app, every_s=60) + health.periodic_sweep(other_coordinator, app, every_s=60)
    assert sorted(sent) == ["d-avail", "d-quar"]  # not the offline or maintenance device, each once
    [msg] = queued(fleet, "d-quar")
    assert msg["headers"]["task"] == "benchfarm.health_check"
    assert queued(fleet, "d-maint") == [] and queued(fleet, "d-off") == []


def test_rechecks_back_off_one_pending_at_a_time_and_stop(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(health_schedule.RECHECK_ENV, "300")
    assert [health_schedule.recheck_delay_s(n) for n in (1, 2, 3)] == [300, 600, 1200]
    first = health_schedule.schedule_recheck(fleet, app, "d-quar", 1)
    assert first is not None
    assert health_schedule.schedule_recheck(fleet, app, "d-quar", 1) is None  # one pending recheck per device
    [msg] = queued(fleet, "d-quar")
    assert msg["headers"]["eta"]  # a countdown, not now
    health_schedule.recheck_started(fleet, first)
    assert health_schedule.schedule_recheck(fleet, app, "d-quar", 2) is not None
    assert health_schedule.schedule_recheck(fleet, app, "d-avail", health_schedule.MAX_RECHECKS + 1) is None  # bounded

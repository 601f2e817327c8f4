"""A quarantine copied from the device-event stream is the device_quarantined webhook, sent
once however often the copy runs."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.device_history import drain_device_events
from orchestrator.store.db import session
from orchestrator.store.models import DeviceEvent
from tests.webhook_sink import webhook_sink


def test_a_quarantine_is_announced_once(bf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    with webhook_sink() as (url, got):
        monkeypatch.setenv("BENCHFARM_WEBHOOK_URL", url)
        fleet.register("udid-1", {"device_class": "A15", "host": "mac-1"})
        fleet.set_state("udid-1", "quarantined", "3 consecutive infrastructure failures")
        assert drain_device_events(fleet) >= 2
        assert drain_device_events(fleet) == 0
        fleet.r.delete("bf:device-events:cursor")  # a copier that lost its cursor copies nothing twice
        assert drain_device_events(fleet) == 0
    assert [(h["event"], h["payload"]) for h in got] == [("device_quarantined", {
        "device_id": "udid-1", "device_class": "A15", "host": "mac-1",
        "reason": "3 consecutive infrastructure failures"})]


def test_a_device_that_comes_back_on_another_host_is_copied_with_it(bf_env: dict[str, str]) -> None:
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    fleet.register("udid-1", {"device_class": "A15", "host": "mac-1"})
    fleet.set_state("udid-1", "busy", "job")
    assert drain_device_events(fleet) == 2  # the copier now remembers udid-1 on mac-1
    fleet.unregister("udid-1")
    fleet.register("udid-1", {"device_class": "A15", "host": "mac-2"})
    fleet.set_state("udid-1", "busy", "job")
    assert drain_device_events(fleet) == 3
    with session() as s:
        rows = s.execute(select(DeviceEvent.state, DeviceEvent.reason, DeviceEvent.host)
                         .order_by(DeviceEvent.stream_id)).all()
    # the re-registration's batch is labelled with the new host, not the remembered one
    assert [tuple(r) for r in rows] == [("available", "registered", "mac-1"), ("busy", "job", "mac-1"),
                                        ("offline", "unregistered", "mac-2"), ("available", "registered", "mac-2"),
                                        ("busy", "job", "mac-2")]

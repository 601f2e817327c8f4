"""Copy the fleet's device-event stream (Redis) into the database, idempotently.

A ``leased`` event names the attempt its lease was taken for: copying it also marks that
attempt running (``record.attempts_started``, a batch of UPDATEs), so agents send no
per-job "started" message and the coordinator handles one Celery message per job, not two.

Agents change device states in Redis only; capacity reporting needs the history in
SQL. The stream id is the primary key, so a copy interrupted half-way and repeated
inserts nothing twice; the cursor only moves after the commit. A copied ``quarantined``
event is also the ``device_quarantined`` webhook (sent by the coordinator, which has the
webhook URL, not by the agent that quarantined the device).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.record import AttemptStart, attempts_started
from orchestrator.observability.notify import notify
from orchestrator.store.db import session, write_gate
from orchestrator.store.models import DeviceEvent


def drain_device_events(fleet: Fleet, batch: int = 1000) -> int:
    copied = 0
    while True:
        cursor = fleet.events.cursor()
        events = fleet.read_events(cursor, batch)
        if not events:
            return copied
        # remembered for a while (no round trip for most batches); a device that registered in the
        # batch is read again: it may have come back on another host
        infos = fleet.inventory.class_and_host((f.get("device", "") for _, f in events),
                                               fresh=(f.get("device", "") for _, f in events
                                                      if f.get("reason") == "registered"))
        quarantined: list[dict[str, str]] = []
        rows: list[dict[str, Any]] = []
        starts: list[AttemptStart] = []
        with write_gate(), session() as s:  # beside the recording, on SQLite's one writer
            known = set(s.scalars(select(DeviceEvent.stream_id).where(
                DeviceEvent.stream_id.in_([eid for eid, _ in events]))))
            for eid, f in events:
                if eid in known:
                    continue
                dev = f.get("device", "")
                info = infos[dev]
                rows.append({"stream_id": eid, "device_id": dev, "device_class": info.get("device_class", ""),
                             "host": info.get("host", ""), "state": f.get("state", ""), "reason": f.get("reason", ""),
                             "at": datetime.fromtimestamp(float(f.get("at", "0")), UTC).replace(tzinfo=None)})
                if f.get("state") == "leased" and f.get("attempt"):  # a benchmark's lease: its attempt started
                    starts.append(AttemptStart(f["attempt"], dev, info.get("host", ""), int(f.get("token") or 0),
                                               rows[-1]["at"]))
                if f.get("state") == "quarantined":
                    quarantined.append({"device_id": dev, "device_class": info.get("device_class", ""),
                                        "host": info.get("host", ""), "reason": f.get("reason", "")})
            if rows:  # one executemany: three events per job make this the coordinator's biggest insert
                s.execute(insert(DeviceEvent), rows)
            attempts_started(s, starts)
            copied += len(rows)
        fleet.events.advance(events[-1][0])
        # after the commit, once per event: the stream id is the key a second copier collides on
        for payload in quarantined:
            notify("device_quarantined", payload)

"""Drain and undrain a host: its agent finishes current jobs and takes no new ones.

Two signals, in this order: a marker file on the host (the agent reads it before taking
a job, so it holds even while Redis is unreachable from the host), then every device of
the host goes to ``maintenance`` in the fleet state, so the scheduler stops routing to it
and ``Fleet.acquire`` refuses new leases. A device leased right now keeps its lease and
finishes: releasing it leaves ``maintenance`` untouched. Undrain reverts only what a
drain set (state reason ``drained: ...``), never an operator's own maintenance.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from device_inventory.fleet import Fleet
from orchestrator.fleetops.inventory import Host
from orchestrator.fleetops.ssh import Remote, Timeouts
from orchestrator.fleetops.units import Layout

DRAIN_REASON = "drained: host {name}"


@dataclass
class DrainReport:
    host: str
    draining: bool
    devices: list[str] = field(default_factory=list)  # devices whose state this call changed
    busy: list[str] = field(default_factory=list)  # leased/busy devices still finishing a job


def host_devices(fleet: Fleet, host: Host) -> list[dict[str, str]]:
    """Devices the agent on ``host`` registered: bootstrap names the agent after the inventory
    entry (``agent`` field); ``host`` is what a driver may report (hostname)."""
    names = (host.name, host.hostname)
    return [d for d in fleet.devices() if d.get("agent") in names or d.get("host") in names]


def drain(host: Host, known_hosts: str, fleet: Fleet, timeouts: Timeouts | None = None) -> DrainReport:
    with Remote(host, known_hosts, timeouts) as remote:
        marker = Layout(remote.path(), remote.home).drain_marker
        note = {"since": time.time(), "reason": "benchfarm hosts drain"}
        remote.put_bytes(json.dumps(note).encode(), marker)
    report = DrainReport(host.name, draining=True)
    reason = DRAIN_REASON.format(name=host.name)
    for dev in host_devices(fleet, host):
        # the raw hash state: devices() shows 'offline' for a stale heartbeat, but the
        # lease script only cares what the hash says
        raw = fleet.device(dev["id"]).get("state", "")
        if raw in ("leased", "busy"):
            report.busy.append(dev["id"])
        if raw not in ("maintenance", "quarantined"):
            fleet.set_state(dev["id"], "maintenance", reason)
            report.devices.append(dev["id"])
    return report


def undrain(host: Host, known_hosts: str, fleet: Fleet, timeouts: Timeouts | None = None) -> DrainReport:
    reason = DRAIN_REASON.format(name=host.name)
    report = DrainReport(host.name, draining=False)
    for dev in host_devices(fleet, host):
        raw = fleet.device(dev["id"])
        if raw.get("state") == "maintenance" and raw.get("state_reason") == reason:
            fleet.set_state(dev["id"], "available", f"undrained: host {host.name}")
            report.devices.append(dev["id"])
    # marker last: the agent resumes only once its devices can be leased again
    with Remote(host, known_hosts, timeouts) as remote:
        remote.run(["rm", "-f", Layout(remote.path(), remote.home).drain_marker])
    return report

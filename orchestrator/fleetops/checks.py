"""``benchfarm hosts check``: reachability and health of every host, in parallel, in bounded time.

Each host gets one SSH session: a probe script (Python version, disk, service state,
clock), then the agent's own ``benchfarm devices --local --json`` so the devices listed
are the ones the agent itself would see. Hosts are checked concurrently with a bounded
pool; a down host costs its connect timeout (times its bounded retries), never more.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from orchestrator.fleetops.errors import CommandFailed, FleetOpsError
from orchestrator.fleetops.inventory import Host, Inventory
from orchestrator.fleetops.ssh import Remote, Timeouts

PROBE_TIMEOUT_S = 30.0
DEVICES_TIMEOUT_S = 60.0


@dataclass
class HostStatus:
    name: str
    address: str
    ok: bool = False
    error_kind: str = ""
    error: str = ""
    python: str = ""
    disk_free_gb: float | None = None
    service: str = ""
    draining: bool = False
    clock_skew_s: float | None = None
    devices: list[dict[str, Any]] | None = None
    devices_note: str = ""
    missing_classes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe(remote: Remote, hash_paths: Sequence[str] = ()) -> dict[str, Any]:
    """Run the probe script on the host; also measures clock skew against this machine."""
    script = resources.files("orchestrator.fleetops").joinpath("probe_script.py").read_bytes()
    before = time.time()
    out = remote.run([remote.host.python, "-", remote.host.base_dir, *hash_paths], stdin=script,
                     timeout=PROBE_TIMEOUT_S).stdout
    after = time.time()
    try:
        facts = json.loads(out)
    except json.JSONDecodeError:
        raise FleetOpsError(remote.host.name, f"probe printed no JSON: {out[-500:]!r}") from None
    # the remote clock was read somewhere between before and after: compare to the middle,
    # so the error is at most half the round trip.
    facts["clock_skew_s"] = facts["time"] - (before + after) / 2
    return facts


def _device_class(dev: dict[str, Any]) -> str:
    return str(dev.get("device_class") or dev.get("class") or "")


def _devices(remote: Remote, facts: dict[str, Any], status: HostStatus) -> None:
    if not facts.get("benchfarm"):
        status.devices_note = "benchfarm not installed (run `benchfarm hosts bootstrap`)"
        return
    try:
        argv = [facts["benchfarm"], "devices", "--local", "--json"]
        out = remote.run(argv, timeout=DEVICES_TIMEOUT_S).stdout
        devices = json.loads(out)
        if isinstance(devices, dict):
            devices = devices.get("devices", [])
        if not isinstance(devices, list):
            raise ValueError(f"expected a JSON list, got {type(devices).__name__}")
    except CommandFailed as exc:
        status.devices_note = f"`benchfarm devices --local --json` failed (exit {exc.exit_code}): " \
                              f"{exc.stderr_tail.splitlines()[-1] if exc.stderr_tail else ''}"
        return
    except ValueError as exc:
        status.devices_note = f"`benchfarm devices --local --json` printed unusable output: {exc}"
        return
    status.devices = devices
    found = {_device_class(d) for d in devices if isinstance(d, dict)}
    status.missing_classes = [c for c in remote.host.device_classes if c not in found]


def check_host(host: Host, known_hosts: str, timeouts: Timeouts | None = None) -> HostStatus:
    status = HostStatus(host.name, host.address)
    t0 = time.monotonic()
    try:
        with Remote(host, known_hosts, timeouts) as remote:
            facts = probe(remote)
            status.python = facts["python"]
            status.disk_free_gb = round(facts["disk_free_bytes"] / 1e9, 1)
            status.service = f"{facts['service_state']} ({facts['service_mode'] or 'none'})"
            status.draining = facts["draining"]
            status.clock_skew_s = round(facts["clock_skew_s"], 3)
            _devices(remote, facts, status)
            status.ok = True
    except FleetOpsError as exc:
        status.error_kind, status.error = exc.kind, str(exc)
    status.elapsed_s = round(time.monotonic() - t0, 2)
    return status


def check_all(inventory: Inventory, known_hosts: str | None = None, timeouts: Timeouts | None = None,
              concurrency: int = 8, names: list[str] | None = None) -> list[HostStatus]:
    """Check hosts concurrently; results in inventory order."""
    hosts = [inventory.host(n) for n in names] if names else inventory.hosts
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(hosts)))) as pool:
        futures = [pool.submit(check_host, h, known_hosts or inventory.known_hosts, timeouts) for h in hosts]
        return [f.result() for f in futures]

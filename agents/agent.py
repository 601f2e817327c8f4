"""The agent supervisor: one process per host.

It discovers devices through its drivers every few seconds (hot-plug), registers them
in the fleet, keeps their heartbeats, and runs one device worker process per usable
device. A quarantined device's worker is restarted in health-only mode (it consumes only
the device's own queue, so it takes no benchmarks but can pass the health check that
releases it; agents.health_check); a maintenance device gets no worker; an unplugged
device's worker is stopped and the device goes offline. SIGTERM stops workers with
Celery's warm shutdown, so a running benchmark finishes (or its lease is released)
before the agent exits.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from agents import conditions
from agents.drivers import make_driver
from agents.protocols import DeviceInfo, Driver
from device_inventory.fleet import CONDITION_STATES, Fleet
from orchestrator.observability import metrics
from orchestrator.observability.logs import setup_logging

log = logging.getLogger("benchfarm.agent")

# device heartbeats expire after this: an agent that dies takes its devices offline
DEVICE_TTL_S = 15.0
# a warm shutdown waits for the running benchmark; beyond this the worker is killed
# and the lease reaper requeues whatever it was doing
STOP_GRACE_S = 60.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: a device worker must not outlive its agent (SIGKILLed agent = dead host)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass
class AgentConfig:
    name: str = field(default_factory=socket.gethostname)
    drivers: dict[str, dict[str, Any]] = field(default_factory=lambda: {"host": {}})
    scan_every_s: float = 3.0
    condition_recheck_s: float = conditions.RECHECK_S  # a device with Developer Mode off etc. is re-read this often
    lease_ttl_s: float = 30.0
    heartbeat_s: float = 5.0
    env: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)  # on every device of this agent
    device_labels: dict[str, list[str]] = field(default_factory=dict)  # device id -> its own labels

    def labels_of(self, device_id: str) -> list[str]:
        return sorted(set(self.labels) | set(self.device_labels.get(device_id, [])))


class Agent:
    def __init__(self, config: AgentConfig, fleet: Fleet):
        self.config = config
        self.fleet = fleet
        self.drivers: dict[str, Driver] = {n: make_driver(n, **o) for n, o in config.drivers.items()}
        self.devices: dict[str, DeviceInfo] = {}
        self.workers: dict[str, subprocess.Popen] = {}
        self.health_only: dict[str, bool] = {}  # device id -> its worker serves health checks only
        self.stopping = threading.Event()
        self.condition_read: dict[str, float] = {}  # device id -> when its health was last read here

    # -- discovery --------------------------------------------------------------------
    def scan(self) -> None:
        seen: dict[str, DeviceInfo] = {}
        for name, driver in self.drivers.items():
            try:
                for dev in driver.discover():
                    dev.extra["labels"] = self.config.labels_of(dev.id)
                    seen[dev.id] = dev
            except Exception:
                log.warning("discovery with driver %s failed", name, exc_info=True)
        for dev_id in set(self.devices) - set(seen):
            log.info("device %s unplugged", dev_id)
            self._stop_worker(dev_id, grace=5)
            self.fleet.unregister(dev_id)
            del self.devices[dev_id]
            self.condition_read.pop(dev_id, None)  # read it again when it comes back
        for dev_id, dev in seen.items():
            if dev_id not in self.devices:
                log.info("device %s (%s, %s) attached", dev_id, dev.device_class, dev.name)
            self.devices[dev_id] = dev
            self.fleet.register(dev_id, {**{k: v for k, v in dev.as_dict().items() if k != "extra"},
                                         "agent": self.config.name, "labels": ",".join(dev.extra["labels"])},
                                heartbeat_ttl=DEVICE_TTL_S)

    def check_conditions(self) -> None:
        """Read health of a device when it attaches and, while it waits in a condition state
        (developer_mode_off, ddi_missing), every ``condition_recheck_s``: a fixed phone returns to
        service without a job to prompt it (agents.conditions)."""
        now = time.monotonic()
        for dev_id, dev in self.devices.items():
            state = self.fleet.device(dev_id).get("state", "available")
            last = self.condition_read.get(dev_id)
            if last is not None and (state not in CONDITION_STATES or now - last < self.config.condition_recheck_s):
                continue
            self.condition_read[dev_id] = now
            if state not in conditions.REPLACEABLE:
                continue
            try:
                conditions.apply(self.fleet, dev_id, self.drivers[dev.driver].health(dev))
            except Exception:  # an unreachable device is the discovery's business, not this check's
                log.warning("health read of %s failed", dev_id, exc_info=True)

    def reconcile_workers(self) -> None:
        for dev_id, dev in self.devices.items():
            state = self.fleet.device(dev_id).get("state", "available")
            proc = self.workers.get(dev_id)
            alive = proc is not None and proc.poll() is None
            if state == "maintenance":
                if alive:
                    log.info("device %s is %s: stopping its worker after the current job", dev_id, state)
                    self._stop_worker(dev_id)
                continue
            health_only = state == "quarantined"
            if alive and self.health_only.get(dev_id) != health_only:
                log.info("device %s is %s: restarting its worker %s after the current job", dev_id, state,
                         "for health checks only" if health_only else "for benchmarks")
                self._stop_worker(dev_id)
                alive = False
            if not alive:
                self._start_worker(dev, health_only)

    def _start_worker(self, dev: DeviceInfo, health_only: bool = False) -> None:
        env = dict(os.environ, **self.config.env,
                   BENCHFARM_HEALTH_ONLY="1" if health_only else "0",
                   BENCHFARM_DEVICE=json.dumps(dev.as_dict()),
                   BENCHFARM_DRIVER_OPTIONS=json.dumps(self.config.drivers.get(dev.driver, {})),
                   BENCHFARM_LEASE_TTL=str(self.config.lease_ttl_s),
                   BENCHFARM_HEARTBEAT_S=str(self.config.heartbeat_s))
        self.workers[dev.id] = subprocess.Popen(
            [sys.executable, "-m", "agents.device_worker"], env=env, preexec_fn=_die_with_parent)
        self.health_only[dev.id] = health_only
        log.info("started %sworker pid %d for %s", "health-only " if health_only else "",
                 self.workers[dev.id].pid, dev.id)

    def _stop_worker(self, dev_id: str, grace: float = STOP_GRACE_S) -> None:
        proc = self.workers.pop(dev_id, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # Celery warm shutdown: finish the current task
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # -- main loop --------------------------------------------------------------------
    def heartbeat(self) -> None:
        for dev_id in self.devices:
            self.fleet.heartbeat(dev_id, DEVICE_TTL_S)

    def run(self) -> None:
        setup_logging()
        if any(name.startswith("host") for name in self.config.drivers):
            # the agent and every worker it starts stay off the CPU the host harness reserves
            from agents.drivers import host_isolation

            p = host_isolation.plan()
            pinned = host_isolation.pin_farm(p)
            log.info("farm processes on CPU %s, host benchmarks on CPU %s%s", list(p.farm), list(p.harness),
                     "" if pinned else f" (not isolated: {p.reason or 'sched_setaffinity refused'})")
        metrics.serve_agent(self.config.name)  # before any device worker starts: they inherit its directory
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        last_scan = 0.0
        failures = 0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_scan >= self.config.scan_every_s:
                    self.scan()
                    last_scan = time.monotonic()
                    self.check_conditions()
                self.reconcile_workers()
                self.heartbeat()
                failures = 0
            except (redis.RedisError, OSError) as exc:
                # Redis restarting or unreachable: keep the device workers (they reconnect
                # on their own) and try again; leases that expire meanwhile are fenced
                failures += 1
                log.warning("agent loop: %s (%d in a row); retrying", exc, failures)
            self.stopping.wait(min(1.0 * 2 ** min(failures, 4), 10.0) if failures else 1.0)
        self.shutdown()

    def shutdown(self) -> None:
        log.info("agent %s stopping: %d workers", self.config.name, len(self.workers))
        threads = [threading.Thread(target=self._stop_worker, args=(d,)) for d in list(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for dev_id in self.devices:
            self.fleet.unregister(dev_id)

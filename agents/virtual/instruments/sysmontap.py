"""sysmontap channel (``com.apple.instruments.server.services.sysmontap``): periodic process samples.

The host sends ``setConfig:`` (which process and system attributes, the sample interval),
then ``start``; the device answers with one first message and then, every interval, a list
of rows pushed as notifications: a system row and a ``Processes`` row mapping each pid to its
values in the order of the host's ``procAttrs``. ``stop`` or closing the channel ends it.
CPU and footprint come from the simulated process table (``instruments.processes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from pymobiledevice3.dtx import DTXService, dtx_on_invoke

from agents.virtual.instruments import processes as ptable
from agents.virtual.instruments.deviceinfo import mach_ticks

IDENTIFIER = "com.apple.instruments.server.services.sysmontap"
DEFAULT_INTERVAL_S = 0.5
# A host asking for samples every millisecond gets them no faster than this: the virtual
# device shares one event loop with every other device of the fleet.
MIN_INTERVAL_S = 0.05
PHYS_MEM_BYTES = {"iPad": 8 * 1024**3, "iPhone16": 8 * 1024**3}
PAGE = 16384
log = logging.getLogger(__name__)


def _interval_s(config: dict[str, Any]) -> float:
    ms = config.get("ur") or (config.get("sampleInterval") or 0) / 1_000_000
    return max(MIN_INTERVAL_S, float(ms) / 1000) if ms else DEFAULT_INTERVAL_S


def process_values(device: Any, proc: ptable.Proc, now: float, rng: random.Random) -> dict[str, Any]:
    load = ptable.load_of(device, proc)
    age_s = max(0.0, now - proc.started)
    cpu = max(0.0, load.cpu_pct * (1 + rng.gauss(0, 0.03)))
    busy_ticks = mach_ticks(age_s * min(load.cpu_pct, 100 * 8) / 100)
    footprint = int(load.footprint_bytes * (1 + abs(rng.gauss(0, 0.005))))
    return {
        "pid": proc.pid, "ppid": proc.ppid, "name": proc.name, "uid": proc.uid, "cpuUsage": round(cpu, 2),
        "cpuTotalUser": int(busy_ticks * 0.85), "cpuTotalSystem": int(busy_ticks * 0.15),
        "physFootprint": footprint, "memResidentSize": int(footprint * 1.1), "memVirtualSize": 400 * 1024**3,
        "memAnon": int(footprint * 0.8), "threadCount": 9 if load.cpu_pct > 100 else 4,
        "procAge": mach_ticks(age_s), "startAbsTime": mach_ticks(proc.started - ptable.boot_time(device)),
        "diskBytesRead": 0, "diskBytesWritten": 0, "faults": int(footprint / PAGE), "ctxSwitch": int(age_s * 50),
    }


def system_values(device: Any) -> dict[str, Any]:
    phys = next((v for k, v in PHYS_MEM_BYTES.items() if device.product_type.startswith(k)), 4 * 1024**3)
    used = sum(ptable.load_of(device, p).footprint_bytes for p in ptable.processes(device))
    return {"vmFreeCount": (phys - used) // PAGE, "vmActiveCount": used // PAGE, "vmWireCount": 40000,
            "vmCompressorPageCount": 1000, "physMemSize": phys, "threadCount": 900, "diskBytesRead": 0,
            "diskBytesWritten": 0, "netBytesIn": 0, "netBytesOut": 0}


class SysmontapDevice(DTXService):
    """Device side of the sysmontap channel."""

    IDENTIFIER = IDENTIFIER

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._device = ctx["device"]
        self._config: dict[str, Any] = {}
        self._task: asyncio.Task | None = None
        self._rng = random.Random()

    @dtx_on_invoke("setConfig:")
    async def _set_config(self, config: Any) -> None:
        self._config = dict(config) if isinstance(config, dict) else {}

    @dtx_on_invoke("start")
    async def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sample(), name="sysmontap")

    @dtx_on_invoke("stop")
    async def _stop(self) -> None:
        self._cancel()

    def on_closed(self, reason: str = "") -> None:
        self._cancel()
        super().on_closed(reason)

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _sample(self) -> None:
        interval = _interval_s(self._config)
        proc_attrs = [str(a) for a in self._config.get("procAttrs") or []]
        sys_attrs = [str(a) for a in self._config.get("sysAttrs") or []]
        with contextlib.suppress(Exception):  # the host may close the channel between two samples
            cores = 8 if self._device.product_type.startswith("iPad") else 6
            await self.send_notification([{"CPUCount": cores, "EnabledCPUs": cores, "Type": 41,
                                           "BenchfarmSimulated": True}])
            while True:
                start = time.time()
                await asyncio.sleep(interval)
                now = time.time()
                procs = {p.pid: [process_values(self._device, p, now, self._rng).get(a) for a in proc_attrs]
                         for p in ptable.processes(self._device)}
                system = system_values(self._device)
                boot = ptable.boot_time(self._device)
                window = {"StartMachAbsTime": mach_ticks(start - boot), "EndMachAbsTime": mach_ticks(now - boot)}
                await self.send_notification([
                    {"Type": 7, "System": [system.get(a) for a in sys_attrs], **window},
                    {"Type": 5, "Processes": procs, **window},
                ])

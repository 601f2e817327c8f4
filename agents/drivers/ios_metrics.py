"""The device's own figures for the harness process while it runs: DVT sysmontap and the energy gauge.

The harness reports its own peak memory (and, where it can, energy); the device's instruments
server sees the same process from outside. While the harness runs (load, warm-up and the timed
iterations) the driver samples its pid on a second DVT connection, so a sampler that fails
cannot disturb process control:

- ``dvt.sysmontap``: CPU % and physical footprint (``physFootprint``, what jetsam counts), with
  pymobiledevice3's ``Sysmontap`` asking only for the attributes used;
- ``dvt.energy``: the Xcode energy gauge (``com.apple.xcode.debug-gauge-data-providers.Energy``,
  pymobiledevice3's ``EnergyMonitor``) for the pid. Its ``energy.*.cost`` figures are read as
  mW: that is the gauge's convention as far as it is known (Apple does not document it) and what
  the virtual device simulates; the CPU and GPU parts are the model's work, display, networking,
  location and app state are not;
- ``diagnostics.battery``: the battery's current and voltage (whole device) once at the start.
  While the phone charges over USB the current is the charger's, not the device's draw, so no
  power figure is derived from it then and the block says so.

Sampling never fails the benchmark: a source that cannot be read is listed under ``missing``
with the reason. The block travels beside the harness's document (``runner.launch`` adds it as
``device_metrics`` after the harness's document passed the contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from pymobiledevice3.services.diagnostics import DiagnosticsService
from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
from pymobiledevice3.services.dvt.instruments.energy_monitor import EnergyMonitor
from pymobiledevice3.services.dvt.instruments.sysmontap import Sysmontap

from agents.drivers.ios_session import Session, close_quietly

# What Instruments' own activity monitor samples at; a shorter interval costs the phone CPU.
INTERVAL_S = 0.5
# A virtual device compresses time: its runs last a fraction of a second, so sample faster.
SIMULATED_INTERVAL_S = 0.05
PROC_ATTRS = ["pid", "name", "cpuUsage", "physFootprint"]
SYS_ATTRS = ["physMemSize"]
STOP_TIMEOUT_S = 10.0  # closing the channels and the DVT connection after the run
SOURCES = ("dvt.sysmontap", "dvt.energy", "diagnostics.battery")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__


class DeviceSampler:
    """Collects samples of one pid until stopped; ``block()`` summarises them."""

    def __init__(self, pid: int, simulated: bool) -> None:
        self.pid = pid
        self.simulated = simulated
        self.interval_s = SIMULATED_INTERVAL_S if simulated else INTERVAL_S
        self.cpu: list[float] = []
        self.footprint: list[int] = []
        self.cost: list[float] = []
        self.compute: list[float] = []
        self.battery: dict[str, Any] | None = None
        self.missing: dict[str, str] = {}
        self.stop = asyncio.Event()
        self.started = time.monotonic()
        self.ended: float | None = None

    async def run(self, s: Session) -> None:
        await self._battery(s)
        try:
            async with DvtProvider(await s.dvt_target()) as dvt:
                await asyncio.gather(self._sysmontap(dvt), self._energy(dvt))
        except Exception as exc:  # no DVT at all: both DVT sources are missing, for the same reason
            for source in SOURCES[:2]:
                self.missing.setdefault(source, _reason(exc))

    async def _battery(self, s: Session) -> None:
        try:
            assert s.lockdown is not None
            diag = DiagnosticsService(s.lockdown)
            await asyncio.wait_for(diag.connect(), s.target.call_timeout_s)
            try:
                bat = await asyncio.wait_for(diag.get_battery(), s.target.call_timeout_s) or {}
            finally:
                await close_quietly(diag)
        except Exception as exc:
            self.missing["diagnostics.battery"] = _reason(exc)
            return
        charging = bool(bat.get("IsCharging") or bat.get("ExternalConnected"))
        amps, volts = bat.get("InstantAmperage"), bat.get("Voltage")
        block: dict[str, Any] = {"source": "diagnostics.battery", "charging": charging, "power_mw": None}
        if charging:
            block["note"] = "charging over USB: the battery current is the charger's, not the device's draw"
        elif isinstance(amps, int | float) and isinstance(volts, int | float) and amps < 0:
            block["power_mw"] = round(-amps * volts / 1000, 1)  # mA x mV -> uW; /1000 -> mW (whole device)
        else:
            block["note"] = "the battery reported no discharge current"
        self.battery = block

    async def _sysmontap(self, dvt: DvtProvider) -> None:
        try:
            tap = Sysmontap(dvt, PROC_ATTRS, SYS_ATTRS, interval_ms=max(1, int(self.interval_s * 1000)))
            async with tap:
                async for procs in tap.iter_processes():
                    for p in procs:
                        if p.get("pid") == self.pid:
                            self._keep_process(p)
                    if self.stop.is_set():
                        return
        except Exception as exc:
            self.missing["dvt.sysmontap"] = _reason(exc)

    def _keep_process(self, p: dict[str, Any]) -> None:
        if isinstance(p.get("cpuUsage"), int | float):  # the first sample of a process has none
            self.cpu.append(float(p["cpuUsage"]))
        if isinstance(p.get("physFootprint"), int) and p["physFootprint"] > 0:
            self.footprint.append(int(p["physFootprint"]))

    async def _energy(self, dvt: DvtProvider) -> None:
        try:
            async with EnergyMonitor(dvt, [self.pid]) as energy:
                async for sample in energy:
                    row = (sample or {}).get(self.pid) or (sample or {}).get(str(self.pid))
                    if isinstance(row, dict) and isinstance(row.get("energy.cost"), int | float):
                        self.cost.append(float(row["energy.cost"]))
                        self.compute.append(float(row.get("energy.cpu.cost") or 0.0)
                                            + float(row.get("energy.gpu.cost") or 0.0))
                        self.simulated = self.simulated or row.get("benchfarm.simulated") is True
                    if self.stop.is_set():
                        return
                    await asyncio.sleep(self.interval_s)
        except Exception as exc:
            self.missing["dvt.energy"] = _reason(exc)

    def block(self) -> dict[str, Any]:
        """The ``device_metrics`` block (result schema ``$defs/device_metrics``), without the
        per-inference energy, which needs the harness's latencies (``runner.launch`` adds it)."""
        window = (self.ended or time.monotonic()) - self.started
        out: dict[str, Any] = {"simulated": self.simulated, "window_s": round(window, 3),
                               "interval_s": self.interval_s, "memory": None, "energy": None,
                               "battery": self.battery}
        if self.footprint:
            out["memory"] = {"source": "dvt.sysmontap", "samples": len(self.footprint),
                             "peak_footprint_bytes": max(self.footprint),
                             "mean_footprint_bytes": int(statistics.fmean(self.footprint)),
                             "mean_cpu_pct": round(statistics.fmean(self.cpu), 2) if self.cpu else None,
                             "peak_cpu_pct": round(max(self.cpu), 2) if self.cpu else None}
        elif "dvt.sysmontap" not in self.missing:
            self.missing["dvt.sysmontap"] = f"no sample of pid {self.pid} within {window:.2f} s"
        if self.cost:
            out["energy"] = {"source": "dvt.energy", "samples": len(self.cost),
                             "mean_cost_mw": round(statistics.fmean(self.cost), 3),
                             "mean_compute_cost_mw": round(statistics.fmean(self.compute), 3)}
        elif "dvt.energy" not in self.missing:
            self.missing["dvt.energy"] = f"no gauge sample of pid {self.pid} within {window:.2f} s"
        out["missing"] = [{"source": k, "reason": v} for k, v in sorted(self.missing.items())]
        return out


@contextlib.asynccontextmanager
async def sample(s: Session, pid: int, simulated: bool) -> AsyncIterator[DeviceSampler]:
    """Sample ``pid`` in the background for as long as the block runs; never raises for the sampler."""
    sampler = DeviceSampler(pid, simulated)
    task = asyncio.ensure_future(sampler.run(s))
    try:
        yield sampler
    finally:
        sampler.ended = time.monotonic()
        sampler.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S + sampler.interval_s)
        except TimeoutError:
            for source in SOURCES[:2]:
                sampler.missing.setdefault(source, f"the sampler did not stop within {STOP_TIMEOUT_S:.0f} s")
        except Exception as exc:  # run() catches its own failures; this is a bug, not the benchmark's
            sampler.missing.setdefault("dvt.sysmontap", _reason(exc))
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

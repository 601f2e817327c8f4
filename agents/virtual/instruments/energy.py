"""The Xcode energy gauge (``com.apple.xcode.debug-gauge-data-providers.Energy``) for chosen pids.

``startSamplingForPIDs:`` / ``stopSamplingForPIDs:`` arm and disarm pids;
``sampleAttributes:forPIDs:`` answers, per sampled and running pid, the gauge's cost
figures (``energy.cost`` and its CPU / GPU / display / networking / location parts, keys
as iOS spells them). The virtual device fills them with the simulated power draw in mW;
what the figures mean on hardware is Apple's private contract (the agent labels its use).
"""

from __future__ import annotations

import random
import time
from typing import Any

from pymobiledevice3.dtx import DTXService, dtx_on_invoke

from agents.virtual.instruments import processes as ptable

IDENTIFIER = "com.apple.xcode.debug-gauge-data-providers.Energy"
FOREGROUND_APP_COST = 8.0  # what the gauge charges an app for being in the foreground


def gauge(load: ptable.Load, since_s: float, is_app: bool, rng: random.Random | None = None) -> dict[str, Any]:
    # the gauge estimates from its own power model: a couple of percent off sample to sample
    total_mw = load.power_w * 1000 * (1 + (rng.gauss(0, 0.02) if rng else 0.0))
    cpu_share = min(1.0, load.cpu_pct / 200)  # the rest of a benchmark's power goes to the ANE / GPU
    cpu, gpu = total_mw * cpu_share, total_mw * (1 - cpu_share)
    appstate = FOREGROUND_APP_COST if is_app else 0.0
    return {
        "energy.version": 1, "kIDEGaugeSecondsSinceInitialQueryKey": int(since_s),
        "energy.cost": round(cpu + gpu + appstate, 3), "energy.overhead": 0.0,
        "energy.cpu.cost": round(cpu, 3), "energy.cpu.overhead": 0.0,
        "energy.gpu.cost": round(gpu, 3), "energy.gpu.overhead": 0.0,
        "energy.display.cost": 0.0, "energy.display.overhead": 0.0,
        "energy.networking.cost": 0.0, "energy.networkning.overhead": 0.0,  # sic: iOS's spelling
        "energy.location.cost": 0.0, "energy.location.overhead": 0.0,
        "energy.appstate.cost": appstate, "energy.appstate.overhead": 0.0,
        "energy.thermalstate.cost": 0.0, "energy.inducedthermalstate.cost": -1,
        "benchfarm.simulated": True,
    }


class EnergyDevice(DTXService):
    """Device side of the energy gauge channel."""

    IDENTIFIER = IDENTIFIER

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._device = ctx["device"]
        self._sampling: dict[int, float] = {}  # pid -> when sampling started
        self._rng = random.Random()

    @dtx_on_invoke("startSamplingForPIDs:")
    async def _start(self, pids: Any) -> None:
        for pid in pids or []:
            self._sampling.setdefault(int(pid), time.monotonic())

    @dtx_on_invoke("stopSamplingForPIDs:")
    async def _stop(self, pids: Any) -> None:
        for pid in pids or []:
            self._sampling.pop(int(pid), None)

    @dtx_on_invoke("sampleAttributes:forPIDs:")
    async def _sample(self, _attributes: Any, pids: Any) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        now = time.monotonic()
        for pid in (int(p) for p in pids or []):
            proc = ptable.find(self._device, pid)
            if proc is None or pid not in self._sampling:
                continue
            out[pid] = gauge(ptable.load_of(self._device, proc), now - self._sampling[pid], proc.is_application,
                            self._rng)
        return out

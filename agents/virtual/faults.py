"""Fault injection for virtual devices: what can go wrong, per device, scripted or at random.

A fault is a kind plus parameters, active until cleared, for ``count`` occurrences (a
one-shot harness crash is ``count=1``) or for ``duration_s`` seconds. State faults
(low battery, thermal, not paired) change what the device reports while active;
event faults (hang, crash, missing or corrupt result, install failure, slow AFC) are
looked up where they happen. ``unplug`` is physical: the server detaches the device
(Detached event, connections dropped) and replugs it after ``duration_s`` if given.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS: dict[str, str] = {
    "unplug": "device detaches (Detached event, open connections dropped); replugs after duration_s",
    "hang": "the harness starts but never writes a result and never exits",
    "harness_crash": "the harness process dies (SIGSEGV) without writing a result",
    "missing_result": "the harness exits 0 without writing result.json",
    "corrupt_result": "result.json is written but invalid (mode: garbage | truncated | schema)",
    "stale_harness": "the installed harness links an older ExecuTorch: results report runtime_version "
                     "runtime (default 1.0.0), which the coordinator refuses for newer programs",
    "slow_afc": "every AFC reply is delayed by delay_s seconds (default 0.5)",
    "install_failure": "installation_proxy Install/Upgrade answers with an Error",
    "low_battery": "battery at level percent (default 5), not charging",
    "thermal": "thermal state at least state (serious | critical; default serious)",
    "not_paired": "usbmuxd holds no pair record and lockdownd refuses the host (InvalidHostID, pairing denied)",
    "developer_mode_off": "Developer Mode is off (iOS 16+): no developer image mounts, DVT is refused",
    "ddi_missing": "no developer disk image is mounted (as after a reboot): DVT is refused until one is mounted",
    "instruments_refused": "the instruments server refuses the sysmontap and energy gauge channels (process "
                           "control still works), as a device whose developer image lacks them",
    # the iOS 17.4+ developer path (CoreDeviceProxy tunnel + RSD)
    "core_device_proxy_refused": "lockdownd refuses to start CoreDeviceProxy (as a locked or busy device does)",
    "tunnel_drop": "every open CoreDeviceProxy tunnel of the device is cut now (the host's TCP sessions die)",
    "rsd_slow": "RSD answers the RemoteXPC handshake after delay_s seconds (default 2)",
    "reboot": "the device reboots: detaches, processes die, it comes back after duration_s (default 1) "
              "with a new boot session and a new tunnel address",
}
# Shorthands accepted wherever a kind is named.
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "thermal_serious": ("thermal", {"state": "serious"}),
    "thermal_critical": ("thermal", {"state": "critical"}),
    "crash": ("harness_crash", {}),
    "lockdown_refusing": ("not_paired", {}),
    "no_developer_image": ("ddi_missing", {}),
}
CORRUPT_MODES = ("garbage", "truncated", "schema")
THERMAL_STATES = ("nominal", "fair", "serious", "critical")

log = logging.getLogger("agents.virtual.faults")


class FaultError(ValueError):
    """An unknown fault kind or a bad parameter."""


def normalize(kind: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Resolve aliases and check parameters; returns (kind, params)."""
    if kind in ALIASES:
        kind, extra = ALIASES[kind]
        params = {**extra, **params}
    if kind not in FAULT_KINDS:
        raise FaultError(f"unknown fault {kind!r} (known: {', '.join([*FAULT_KINDS, *ALIASES])})")
    if kind == "thermal" and params.setdefault("state", "serious") not in THERMAL_STATES:
        raise FaultError(f"thermal state must be one of {THERMAL_STATES}")
    if kind == "corrupt_result" and params.setdefault("mode", "garbage") not in CORRUPT_MODES:
        raise FaultError(f"corrupt_result mode must be one of {CORRUPT_MODES}")
    if kind == "stale_harness":
        params["runtime"] = str(params.get("runtime", "1.0.0"))[:64]
    if kind == "slow_afc":
        params["delay_s"] = float(params.get("delay_s", 0.5))
    if kind == "rsd_slow":
        params["delay_s"] = float(params.get("delay_s", 2.0))
    if kind == "low_battery":
        level = float(params.get("level", 5))
        if not 0 <= level <= 100:
            raise FaultError("low_battery level must be within 0..100")
        params["level"] = level
    return kind, params


@dataclass
class Fault:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    count: int | None = None  # occurrences left; None = until cleared
    expires_at: float | None = None  # time.monotonic() deadline

    def live(self, now: float) -> bool:
        return (self.count is None or self.count > 0) and (self.expires_at is None or now < self.expires_at)

    def as_dict(self) -> dict[str, Any]:
        left = None if self.expires_at is None else max(0.0, round(self.expires_at - time.monotonic(), 3))
        return {"kind": self.kind, "params": self.params, "count": self.count, "expires_in_s": left}


class FaultSet:
    """The faults active on one device."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}

    def add(self, kind: str, count: int | None = None, duration_s: float | None = None, **params: Any) -> Fault:
        kind, params = normalize(kind, params)
        if count is not None and count < 1:
            raise FaultError("count must be at least 1")
        expires = None if duration_s is None else time.monotonic() + float(duration_s)
        fault = self._faults[kind] = Fault(kind, params, count, expires)
        return fault

    def active(self, kind: str) -> Fault | None:
        """The live fault of this kind, without consuming an occurrence."""
        fault = self._faults.get(kind)
        if fault is None:
            return None
        if not fault.live(time.monotonic()):
            del self._faults[kind]
            return None
        return fault

    def take(self, kind: str) -> Fault | None:
        """The live fault of this kind, consuming one occurrence."""
        fault = self.active(kind)
        if fault is not None and fault.count is not None:
            fault.count -= 1
        return fault

    def clear(self, kind: str | None = None) -> None:
        if kind is None:
            self._faults.clear()
        else:
            self._faults.pop(normalize(kind, {})[0], None)

    def snapshot(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [f.as_dict() for f in self._faults.values() if f.live(now)]


@dataclass
class Chaos:
    """Random faults with a seed: every ``interval_s``, each device draws each kind with its probability.

    A drawn event fault is one-shot (``count=1``: the next launch, install, ...); a drawn
    state fault or unplug lasts ``duration_s``. The same seed and fleet give the same draws.
    """

    seed: int
    interval_s: float = 5.0
    probabilities: dict[str, float] = field(default_factory=dict)
    duration_s: float = 3.0

    def __post_init__(self) -> None:
        for kind, p in self.probabilities.items():
            normalize(kind, {})
            if not 0 <= p <= 1:
                raise FaultError(f"probability of {kind} must be within 0..1")

    def draws(self, udids: list[str], rng: random.Random) -> list[tuple[str, str]]:
        """One tick: the (udid, kind) pairs that fire."""
        return [(u, k) for u in udids for k, p in sorted(self.probabilities.items()) if rng.random() < p]

    async def run(self, udids: Callable[[], list[str]], inject: Callable[..., Any]) -> None:
        rng = random.Random(self.seed)
        while True:
            await asyncio.sleep(self.interval_s)
            for udid, kind in self.draws(sorted(udids()), rng):
                one_shot = normalize(kind, {})[0] in ("hang", "harness_crash", "missing_result", "corrupt_result",
                                                       "stale_harness", "install_failure",
                                                       "core_device_proxy_refused", "rsd_slow")
                log.info("chaos fault", extra={"fields": {"udid": udid, "fault": kind}})
                if one_shot:
                    inject(udid, kind, count=1)
                else:
                    inject(udid, kind, duration_s=self.duration_s)

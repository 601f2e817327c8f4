"""Capacity measurements over plain records (no database, no Redis): testable with
hand-built histories, fed in production by :mod:`orchestrator.capacity.load`.

Times are unix seconds (floats). A device's state intervals are its consecutive
events; the last event before the window tells the state the window opens in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# Time a device could have worked: everything except offline/quarantined/maintenance.
IN_SERVICE = ("available", "leased", "busy")


@dataclass(frozen=True)
class DeviceEventRec:
    device_id: str
    device_class: str
    host: str
    state: str
    at: float


@dataclass(frozen=True)
class JobRec:
    id: str
    run_id: str
    device_class: str
    trigger: str  # pr | manual | nightly (the run's)
    state: str
    created_at: float
    queued_at: float | None  # first offered to devices
    started_at: float | None  # a device took it
    finished_at: float | None
    service_s: float | None  # device time: sum of its attempts' durations


def state_seconds(events: Iterable[DeviceEventRec], start: float, end: float) -> dict[str, dict[str, float]]:
    """Seconds each device spent in each state within [start, end].

    Events before `start` only set the opening state; a device with no event before
    `start` is counted from its first event (it did not exist earlier)."""
    per_device: dict[str, list[DeviceEventRec]] = defaultdict(list)
    for e in events:
        per_device[e.device_id].append(e)
    out: dict[str, dict[str, float]] = {}
    for dev, evs in per_device.items():
        evs.sort(key=lambda e: e.at)
        acc: dict[str, float] = defaultdict(float)
        for cur, nxt in zip(evs, [*evs[1:], None], strict=True):
            lo = max(cur.at, start)
            hi = min(nxt.at if nxt else end, end)
            if hi > lo:
                acc[cur.state] += hi - lo
        out[dev] = dict(acc)
    return out


def device_meta(events: Iterable[DeviceEventRec]) -> dict[str, tuple[str, str]]:
    """device id -> (class, host), from its latest event that names them."""
    meta: dict[str, tuple[str, str]] = {}
    for e in sorted(events, key=lambda e: e.at):
        old = meta.get(e.device_id, ("", ""))
        meta[e.device_id] = (e.device_class or old[0], e.host or old[1])
    return meta


def last_states(events: Iterable[DeviceEventRec]) -> dict[str, str]:
    latest: dict[str, DeviceEventRec] = {}
    for e in events:
        if e.device_id not in latest or e.at >= latest[e.device_id].at:
            latest[e.device_id] = e
    return {d: e.state for d, e in latest.items()}


@dataclass(frozen=True)
class Utilisation:
    in_service_s: float
    busy_s: float
    leased_s: float

    @property
    def utilisation(self) -> float | None:
        """Busy (the benchmark itself) ÷ in-service time."""
        return self.busy_s / self.in_service_s if self.in_service_s > 0 else None

    @property
    def occupancy(self) -> float | None:
        """(Leased + busy) ÷ in-service time: the share the queueing model calls ρ."""
        return (self.busy_s + self.leased_s) / self.in_service_s if self.in_service_s > 0 else None


def utilisation(seconds: Iterable[dict[str, float]]) -> Utilisation:
    in_service = busy = leased = 0.0
    for per_state in seconds:
        in_service += sum(per_state.get(s, 0.0) for s in IN_SERVICE)
        busy += per_state.get("busy", 0.0)
        leased += per_state.get("leased", 0.0)
    return Utilisation(in_service, busy, leased)


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q * 100)) if values else None


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {"n": len(values), "mean_s": float(np.mean(values)) if values else None,
            "p50_s": percentile(values, 0.5), "p95_s": percentile(values, 0.95)}


def waits(jobs: Iterable[JobRec], start: float, end: float) -> dict[str, list[float]]:
    """Queue waits (started − queued) of the jobs a device took within the window, by trigger."""
    out: dict[str, list[float]] = defaultdict(list)
    for j in jobs:
        if j.queued_at is not None and j.started_at is not None and start <= j.started_at <= end:
            out[j.trigger].append(max(0.0, j.started_at - j.queued_at))
    return dict(out)


def arrival_rates(jobs: Iterable[JobRec], start: float, end: float) -> dict[str, float]:
    """Jobs offered to devices per second within the window, by trigger."""
    counts: dict[str, int] = defaultdict(int)
    for j in jobs:
        if j.queued_at is not None and start <= j.queued_at <= end:
            counts[j.trigger] += 1
    span = max(end - start, 1e-9)
    return {t: n / span for t, n in counts.items()}


def service_times(jobs: Iterable[JobRec], start: float, end: float, trigger: str | None = None) -> list[float]:
    return [j.service_s for j in jobs if j.service_s is not None and j.finished_at is not None
            and start <= j.finished_at <= end and (trigger is None or j.trigger == trigger)]


def nightly_runs(jobs: Iterable[JobRec], start: float, end: float) -> list[dict[str, float | str | None]]:
    """Per nightly run that began in the window: measured makespan (first queued → last
    finished, None while unfinished) and its device work."""
    by_run: dict[str, list[JobRec]] = defaultdict(list)
    for j in jobs:
        if j.trigger == "nightly" and j.queued_at is not None:
            by_run[j.run_id].append(j)
    out: list[dict[str, float | str | None]] = []
    for run_id, js in by_run.items():
        first = min(j.queued_at for j in js if j.queued_at is not None)
        if not start <= first <= end:
            continue
        done = all(j.finished_at is not None for j in js)
        last = max((j.finished_at for j in js if j.finished_at is not None), default=None)
        out.append({"run_id": run_id, "started_at": first, "jobs": len(js),
                    "makespan_s": (last - first) if done and last is not None else None,
                    "work_s": sum(j.service_s or 0.0 for j in js)})
    return sorted(out, key=lambda r: float(r["started_at"] or 0.0))

"""The capacity report: one dict per device class and per host, JSON-ready.

``build_report`` is pure (records in, dict out); ``capacity_report`` loads the records
from the database and the live state from Redis, and is what the API serves at
``GET /capacity`` and ``benchfarm capacity`` prints.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.capacity import model as m
from orchestrator.capacity import queueing as qm


@dataclass(frozen=True)
class Targets:
    pr_wait_p95_s: float = 300.0
    nightly_makespan_s: float = 6 * 3600.0
    quantile: float = 0.95


@dataclass
class Live:
    """What Redis says now: device states and queue depth by priority, per class."""

    devices: list[dict[str, str]] = field(default_factory=list)
    queue_depth: dict[str, dict[int, int]] = field(default_factory=dict)
    source: str = "redis"


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isinf(x) else x


def _class_report(cls: str, events: list[m.DeviceEventRec], jobs: list[m.JobRec], live: Live,
                  start: float, end: float, targets: Targets) -> dict[str, Any]:
    seconds = m.state_seconds(events, start, end)
    use = m.utilisation(seconds.values())
    live_devs = [d for d in live.devices if d.get("device_class") == cls]
    states = ({d["id"]: d.get("state", "") for d in live_devs} if live.devices
              else m.last_states(events))
    by_state: dict[str, int] = defaultdict(int)
    for st in states.values():
        by_state[st] += 1
    in_service = sum(n for st, n in by_state.items() if st in m.IN_SERVICE)

    waits = m.waits(jobs, start, end)
    rates = m.arrival_rates(jobs, start, end)
    service = m.service_times(jobs, start, end)
    mean_service = sum(service) / len(service) if service else None
    pr_service = m.service_times(jobs, start, end, "pr") or service
    pr_s = sum(pr_service) / len(pr_service) if pr_service else None
    pr_rate = rates.get("pr", 0.0)

    depth = live.queue_depth.get(cls, {})
    backlog = sum(1 for j in jobs if j.state == "waiting-for-device")
    drain = backlog * mean_service / in_service if backlog and mean_service and in_service else (
        0.0 if not backlog else None)

    need_pr = qm.devices_for_wait(pr_rate, pr_s, targets.pr_wait_p95_s, targets.quantile) if pr_s else 0
    runs = m.nightly_runs(jobs, start, end)
    latest = runs[-1] if runs else None
    nightly_service = [j.service_s for j in jobs if latest and j.run_id == latest["run_id"]
                       and j.service_s is not None]
    pr_load = pr_rate * pr_s if pr_s else 0.0
    need_nightly = qm.devices_for_makespan(nightly_service, targets.nightly_makespan_s, reserved=pr_load)
    lower, upper = qm.makespan_bounds(nightly_service, in_service)
    needed = max(need_pr, need_nightly or 0)
    c_now = in_service or len(states)
    return {
        "devices": {"total": len(states), "in_service": in_service, "by_state": dict(sorted(by_state.items()))},
        "state_seconds": {st: round(sum(s.get(st, 0.0) for s in seconds.values()), 3)
                          for st in sorted({k for s in seconds.values() for k in s})},
        "utilisation": use.utilisation, "occupancy": use.occupancy,
        "queue_depth": {"total": sum(depth.values()), "by_priority": {str(p): n for p, n in sorted(depth.items())}},
        "backlog_jobs": backlog, "drain_eta_s": drain,
        "arrivals_per_hour": {t: r * 3600 for t, r in sorted(rates.items())},
        "waits": {t: m.summary(w) for t, w in sorted(waits.items())},
        "service": m.summary(service),
        "model": {
            "pr_wait_p95_s_now": _finite(qm.wait_quantile(c_now, pr_rate, pr_s, targets.quantile))
            if pr_s and pr_rate else None,
            "pr_offered_load": pr_load,
        },
        "nightly": {"runs": len(runs), "latest": latest, "window_s": targets.nightly_makespan_s,
                    "bound_lower_s": _finite(lower), "bound_upper_s": _finite(upper),
                    "fits": None if not latest or latest["makespan_s"] is None
                    else float(latest["makespan_s"]) <= targets.nightly_makespan_s},
        "devices_needed": {"pr_wait": need_pr, "nightly": need_nightly, "total": needed,
                           "add": max(0, needed - c_now)},
    }


def build_report(events: list[m.DeviceEventRec], jobs: list[m.JobRec], live: Live, start: float, end: float,
                 targets: Targets = Targets(), device_class: str | None = None) -> dict[str, Any]:
    meta = m.device_meta(events)
    ev_by_class: dict[str, list[m.DeviceEventRec]] = defaultdict(list)
    for e in events:
        ev_by_class[meta[e.device_id][0]].append(e)
    jobs_by_class: dict[str, list[m.JobRec]] = defaultdict(list)
    for j in jobs:
        jobs_by_class[j.device_class].append(j)
    classes = set(ev_by_class) | set(jobs_by_class) | {d.get("device_class", "") for d in live.devices}
    classes |= set(live.queue_depth)
    classes.discard("")
    if device_class:
        classes &= {device_class}
    report = {cls: _class_report(cls, ev_by_class.get(cls, []), jobs_by_class.get(cls, []), live, start, end,
                                 targets) for cls in sorted(classes)}
    hosts: dict[str, list[dict[str, float]]] = defaultdict(list)
    for dev, secs in m.state_seconds(events, start, end).items():
        cls, host = meta[dev]
        if not device_class or cls == device_class:
            hosts[host or "?"].append(secs)
    return {
        "window_s": end - start, "start": start, "end": end, "targets": asdict(targets),
        "live_source": live.source,
        "classes": report,
        "hosts": {h: {"devices": len(s), "utilisation": m.utilisation(s).utilisation,
                      "occupancy": m.utilisation(s).occupancy} for h, s in sorted(hosts.items())},
        "model_note": "PR devices: Erlang C (M/M/c) on PR arrivals; nightly: Graham list-scheduling bound",
    }


def capacity_report(window_s: float, device_class: str | None = None, targets: Targets | None = None,
                    now: float | None = None) -> dict[str, Any]:
    """The report over the last `window_s` seconds (database history + live Redis state)."""
    from orchestrator.capacity.load import drain_pending, load_live, load_records

    if window_s <= 0:
        raise ValueError(f"window must be positive, got {window_s} s")
    end = now if now is not None else time.time()
    start = end - window_s
    drain_pending()
    events, jobs = load_records(start, end)
    return build_report(events, jobs, load_live(), start, end, targets or Targets(), device_class)

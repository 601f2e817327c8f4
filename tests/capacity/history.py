"""Recorded histories with known answers, built by simulation (fixed seeds)."""

from __future__ import annotations

import heapq

import numpy as np

from orchestrator.capacity.model import DeviceEventRec, JobRec


def mmc_history(n_jobs: int, devices: int, arrival_rate: float, service_s: float, seed: int,
                prepare_share: float = 0.0, trigger: str = "pr", device_class: str = "A17-Pro",
                t0: float = 1_000_000.0) -> tuple[list[DeviceEventRec], list[JobRec], float]:
    """FCFS M/M/c: Poisson arrivals, exponential service; every device starts available at t0.

    Each job leases its device at start, turns busy after `prepare_share` of its service
    time (prepare/push) and frees it at the end, exactly as agents report; service
    stays exponential, as M/M/c assumes. Returns the events,
    the jobs and the time the last job finished."""
    rng = np.random.default_rng(seed)
    arrivals = t0 + np.cumsum(rng.exponential(1 / arrival_rate, n_jobs))
    services = rng.exponential(service_s, n_jobs)
    free = [(t0, i) for i in range(devices)]
    events = [DeviceEventRec(f"d{i}", device_class, f"host{i % 2}", "available", t0) for i in range(devices)]
    jobs = []
    for k, (arr, svc) in enumerate(zip(arrivals, services, strict=True)):
        free_at, dev = heapq.heappop(free)
        start = max(arr, free_at)
        end = start + svc
        heapq.heappush(free, (end, dev))
        events += [DeviceEventRec(f"d{dev}", device_class, f"host{dev % 2}", "leased", start),
                   DeviceEventRec(f"d{dev}", device_class, f"host{dev % 2}", "busy", start + prepare_share * svc),
                   DeviceEventRec(f"d{dev}", device_class, f"host{dev % 2}", "available", end)]
        jobs.append(JobRec(f"j{k}", f"r{k}", device_class, trigger, "succeeded", float(arr), float(arr),
                           float(start), float(end), float(svc)))
    return events, jobs, max(j.finished_at for j in jobs)

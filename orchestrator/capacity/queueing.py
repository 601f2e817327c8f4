"""Queueing and scheduling models behind "devices needed".

PR jobs: Erlang C (M/M/c). PR work arrives from many independent pull requests, so a
Poisson arrival stream is a fair first model; service times are closer to exponential
than to constant once prepare/push/cleanup and the model mix are counted, and M/M/c
has a closed form for the whole wait distribution, P(W > t) = C(c, a)·e^(−(cμ−λ)t),
so a *percentile* target (p95 ≤ 5 min) turns into an exact inequality in c. PR jobs
have the highest Celery priority, so the PR queue is modelled on PR arrivals alone
(nightly work waiting behind them does not delay them). What the model leaves out:
priorities are not preemptive, so a PR job arriving while every device runs a nightly
job also waits for the first of them to finish (≈ nightly service / c); the report
shows the measured p95 next to the model's so that gap is visible.

Nightly runs: not a queue but a batch released at once, so a deterministic bound is
the right tool: with c identical devices and any greedy list schedule (what Celery's
"free device takes the next message" does), Graham's bound gives
max(W/c, s_max) ≤ makespan ≤ W/c + s_max (W = total work, s_max = longest job).
Devices needed for a nightly window uses the upper bound, so it is a guarantee, not a
hope; PR work that keeps arriving during the night takes its offered load a = λ·S
devices off the top.
"""

from __future__ import annotations

import math

# a fleet larger than this is not a sizing answer but a sign of bad input
MAX_DEVICES = 10_000


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = λ/μ (needs a < c)."""
    if c <= 0 or a >= c:
        return 1.0
    if a <= 0:
        return 0.0
    # Erlang B by its stable recurrence, then C = B / (1 − ρ(1 − B)); no factorials overflow.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho * (1 - b))


def wait_quantile(c: int, arrival_rate: float, service_s: float, q: float) -> float:
    """The q-quantile of the M/M/c waiting time, in seconds (inf when the queue is unstable)."""
    a = arrival_rate * service_s
    if c <= 0 or a >= c:
        return math.inf
    pw = erlang_c(c, a)
    tail = 1 - q
    if pw <= tail:
        return 0.0
    decay = c / service_s - arrival_rate  # cμ − λ
    return math.log(pw / tail) / decay


def mean_wait(c: int, arrival_rate: float, service_s: float) -> float:
    a = arrival_rate * service_s
    if c <= 0 or a >= c:
        return math.inf
    return erlang_c(c, a) / (c / service_s - arrival_rate)


def devices_for_wait(arrival_rate: float, service_s: float, target_s: float, q: float = 0.95) -> int:
    """The smallest c whose q-quantile wait is at most target_s (0 when nothing arrives)."""
    if arrival_rate <= 0 or service_s <= 0:
        return 0
    c = max(1, math.floor(arrival_rate * service_s) + 1)
    while wait_quantile(c, arrival_rate, service_s, q) > target_s:
        c += 1
        if c > MAX_DEVICES:
            raise ValueError(f"more than {MAX_DEVICES} devices needed: check the target and the measurements")
    return c


def makespan_bounds(service_s: list[float], devices: float) -> tuple[float, float]:
    """Graham's bounds on a greedy schedule of the batch on `devices` identical devices."""
    if not service_s:
        return 0.0, 0.0
    if devices <= 0:
        return math.inf, math.inf
    work, longest = sum(service_s), max(service_s)
    return max(work / devices, longest), work / devices + longest


def devices_for_makespan(service_s: list[float], window_s: float, reserved: float = 0.0) -> int | None:
    """The smallest c whose makespan upper bound fits the window, with `reserved` devices'
    worth of capacity taken by other work; None when even one job is longer than the window."""
    if not service_s:
        return 0
    work, longest = sum(service_s), max(service_s)
    if longest >= window_s:
        return None
    return math.ceil(work / (window_s - longest) + reserved - 1e-9)

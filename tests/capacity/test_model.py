"""Capacity model against analytic answers: hand-built intervals, Erlang C closed forms,
and a simulated M/M/2 history (fixed seed) whose utilisation, waits and devices-needed
must match queueing theory within 5 %."""

from __future__ import annotations

import math

import pytest

from orchestrator.capacity import queueing as qm
from orchestrator.capacity.model import DeviceEventRec, JobRec, state_seconds, utilisation
from orchestrator.capacity.report import Live, Targets, build_report
from tests.capacity.history import mmc_history


def ev(dev: str, state: str, at: float, cls: str = "A15", host: str = "mini1") -> DeviceEventRec:
    return DeviceEventRec(dev, cls, host, state, at)


def test_intervals_clip_to_the_window_and_exclude_offline_time():
    events = [ev("a", "available", -50), ev("a", "leased", 90), ev("a", "busy", 100), ev("a", "available", 150),
              ev("a", "offline", 200), ev("a", "available", 300),
              ev("b", "available", 250), ev("b", "quarantined", 260)]
    secs = state_seconds(events, 0, 400)
    # a: available 0-90, 150-200, 300-400; leased 90-100; busy 100-150; offline 200-300
    assert secs["a"] == {"available": 240, "leased": 10, "busy": 50, "offline": 100}
    # b did not exist before its first event
    assert secs["b"] == {"available": 10, "quarantined": 140}
    use = utilisation(secs.values())
    assert use.in_service_s == 240 + 10 + 50 + 10
    assert use.utilisation == pytest.approx(50 / 310)
    assert use.occupancy == pytest.approx(60 / 310)


def test_erlang_c_closed_forms():
    # c=2, a=1: C = 1/3 (textbook); c=3, a=1: C = 1/11
    assert qm.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert qm.erlang_c(3, 1.0) == pytest.approx(1 / 11)
    assert qm.erlang_c(2, 2.0) == 1.0  # unstable: everyone waits
    lam, s = 1 / 60, 60.0
    assert qm.wait_quantile(2, lam, s, 0.95) == pytest.approx(60 * math.log(20 / 3))
    assert qm.wait_quantile(2, lam, s, 0.5) == 0.0  # two thirds never wait
    assert qm.mean_wait(2, lam, s) == pytest.approx(20.0)
    assert qm.devices_for_wait(lam, s, target_s=60) == 3
    assert qm.devices_for_wait(lam, s, target_s=120) == 2
    assert qm.devices_for_wait(0.0, s, target_s=60) == 0


def test_nightly_makespan_bounds_and_devices():
    jobs = [600.0] * 100  # 60,000 device-seconds
    assert qm.makespan_bounds(jobs, 4) == (15_000, 15_600)
    # 60000 / c + 600 <= 21600  ->  c >= 2.86
    assert qm.devices_for_makespan(jobs, 21_600) == 3
    # half a device's worth of PR work during the night
    assert qm.devices_for_makespan(jobs, 21_600, reserved=0.5) == 4
    assert qm.devices_for_makespan([30_000.0], 21_600) is None


N_JOBS, LAM, SVC, PREP = 40_000, 1 / 60, 60.0, 0.1


@pytest.fixture(scope="module")
def mm2():
    events, jobs, end = mmc_history(N_JOBS, 2, LAM, SVC, seed=7, prepare_share=PREP)
    start = events[0].at
    report = build_report(events, jobs, Live(source="test"), start, end,
                          Targets(pr_wait_p95_s=60, nightly_makespan_s=6 * 3600))
    return report["classes"]["A17-Pro"], report


def test_two_devices_half_busy_match_the_analytic_utilisation(mm2):
    cls, report = mm2
    rho = LAM * SVC / 2  # 0.5: occupancy (leased + busy)
    assert cls["occupancy"] == pytest.approx(rho, rel=0.05)
    # busy excludes the prepare step (10 % of each service)
    assert cls["utilisation"] == pytest.approx(rho * (1 - PREP), rel=0.05)
    assert cls["devices"]["total"] == 2
    assert set(report["hosts"]) == {"host0", "host1"}
    for host in report["hosts"].values():
        assert host["occupancy"] == pytest.approx(rho, rel=0.05)


def test_waits_match_erlang_c(mm2):
    cls, _ = mm2
    w = cls["waits"]["pr"]
    assert w["n"] == N_JOBS
    assert w["p50_s"] == 0.0
    assert w["p95_s"] == pytest.approx(qm.wait_quantile(2, LAM, SVC, 0.95), rel=0.05)  # 113.8 s
    assert cls["service"]["mean_s"] == pytest.approx(SVC, rel=0.05)
    assert cls["arrivals_per_hour"]["pr"] == pytest.approx(LAM * 3600, rel=0.05)
    # the mean wait is noisier than the sample's own parameters: compare with Erlang C at
    # the measured arrival rate and service time (20 s at the true ones)
    measured_lam, measured_s = cls["arrivals_per_hour"]["pr"] / 3600, cls["service"]["mean_s"]
    assert w["mean_s"] == pytest.approx(qm.mean_wait(2, measured_lam, measured_s), rel=0.05)
    assert cls["model"]["pr_wait_p95_s_now"] == pytest.approx(w["p95_s"], rel=0.05)


def test_devices_needed_from_the_measured_history(mm2):
    cls, _ = mm2
    # analytic: c=2 gives p95 113.8 s > 60 s, c=3 gives 17.9 s
    assert cls["devices_needed"]["pr_wait"] == qm.devices_for_wait(LAM, SVC, 60) == 3
    assert cls["devices_needed"]["add"] == 1
    assert cls["nightly"]["runs"] == 0 and cls["devices_needed"]["nightly"] == 0


def test_nightly_run_makespan_and_devices_needed_in_the_report():
    # one nightly run: 40 jobs of 900 s on 2 devices, released at t=0 -> makespan 18,000 s;
    # PR load 0.5 devices (one 60 s PR job every 120 s) reserved during the night
    events = [ev(f"d{i}", "available", 0, cls="M2") for i in range(2)]
    jobs = [JobRec(f"n{k}", "night", "M2", "nightly", "succeeded", 0, 0, 900.0 * (k // 2),
                   900.0 * (k // 2 + 1), 900.0) for k in range(40)]
    jobs += [JobRec(f"p{k}", f"pr{k}", "M2", "pr", "succeeded", 120.0 * k, 120.0 * k, 120.0 * k,
                    120.0 * k + 60, 60.0) for k in range(150)]
    rep = build_report(events, jobs, Live(source="test"), 0, 18_000,
                       Targets(pr_wait_p95_s=300, nightly_makespan_s=6 * 3600))["classes"]["M2"]
    night = rep["nightly"]
    assert night["runs"] == 1 and night["latest"]["makespan_s"] == 18_000 and night["fits"] is True
    assert (night["bound_lower_s"], night["bound_upper_s"]) == (18_000, 18_900)
    # 36,000 s of work / (21,600 − 900) + 0.5 reserved = 2.24 -> 3 devices guarantee the window
    assert rep["devices_needed"]["nightly"] == 3
    assert rep["devices_needed"]["total"] == 3 and rep["devices_needed"]["add"] == 1
    assert rep["model"]["pr_offered_load"] == pytest.approx(0.5, rel=0.01)

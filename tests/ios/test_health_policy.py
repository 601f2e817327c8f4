"""The health gating policy: pure functions, no device."""

from __future__ import annotations

import pytest

from agents.health import (
    HealthPolicy,
    cool_down_wait_s,
    evaluate,
    thermal_from_battery_temperature,
    thermal_from_ios,
)
from agents.protocols import Health

GB = 1024 ** 3


def healthy(**kw) -> Health:
    base = dict(ok=True, battery_level=80.0, charging=False, temperature_c=30.0,
                thermal_state="nominal", free_bytes=20 * GB)
    base.update(kw)
    return Health(**base)


def test_healthy_device_runs():
    h = evaluate(healthy(), model_bytes=100 * 1024 * 1024)
    assert (h.ok, h.action, h.problems) == (True, "run", [])


def test_low_battery_releases_unless_charging():
    low = evaluate(healthy(battery_level=12.0))
    assert (low.ok, low.action) == (False, "release")
    assert "battery 12%" in low.problems[0]
    assert evaluate(healthy(battery_level=12.0, charging=True)).action == "run"


def test_threshold_comes_from_policy():
    assert evaluate(healthy(battery_level=45.0), policy=HealthPolicy(min_battery_pct=50)).action == "release"
    assert evaluate(healthy(battery_level=45.0)).action == "run"


@pytest.mark.parametrize("state", ["nominal", "fair", "unknown"])
def test_thermal_ok_states_run(state):
    assert evaluate(healthy(thermal_state=state)).action == "run"


@pytest.mark.parametrize("state", ["serious", "critical"])
def test_hot_device_cools_down_then_is_released(state):
    policy = HealthPolicy(max_cool_down_s=90, cool_down_step_s=30)
    first = evaluate(healthy(thermal_state=state), policy=policy)
    assert (first.ok, first.action) == (False, "cool_down")
    assert cool_down_wait_s(first, policy) == 30
    assert evaluate(healthy(thermal_state=state), policy=policy, waited_s=60).action == "cool_down"
    assert evaluate(healthy(thermal_state=state), policy=policy, waited_s=61).action == "release"


def test_hot_battery_cools_down_even_when_thermal_state_is_nominal():
    h = evaluate(healthy(temperature_c=44.5))
    assert h.action == "cool_down" and "44.5 C" in h.problems[0]


def test_storage_must_hold_model_plus_margin():
    policy = HealthPolicy(storage_margin_bytes=GB)
    assert evaluate(healthy(free_bytes=3 * GB), model_bytes=2 * GB, policy=policy).action == "run"
    tight = evaluate(healthy(free_bytes=3 * GB), model_bytes=2 * GB + 1, policy=policy)
    assert tight.action == "release" and "free storage" in tight.problems[0]


def test_release_wins_over_cool_down_and_driver_problems_are_kept():
    h = evaluate(healthy(thermal_state="serious", problems=["device not paired"]))
    assert h.action == "release"
    assert h.problems[0] == "device not paired" and "thermal state serious" in h.problems


def test_unknown_readings_do_not_block():
    h = evaluate(Health(ok=True))
    assert (h.ok, h.action) == (True, "run")


def test_evaluate_does_not_mutate_input():
    src = healthy(battery_level=5.0)
    evaluate(src)
    assert src.problems == [] and src.action == "run"


def test_cool_down_wait_is_bounded_by_remaining_budget():
    policy = HealthPolicy(max_cool_down_s=100, cool_down_step_s=30)
    h = evaluate(healthy(thermal_state="serious"), policy=policy, waited_s=65)
    assert cool_down_wait_s(h, policy, waited_s=65) == 30
    assert cool_down_wait_s(evaluate(healthy()), policy) == 0


@pytest.mark.parametrize("raw,word", [(0, "nominal"), (1, "fair"), (2, "serious"), (3, "critical"),
                                      (7, "unknown"), (True, "unknown"), ("Serious", "serious"),
                                      ("NSProcessInfoThermalStateFair", "fair"), (None, "unknown")])
def test_thermal_from_ios(raw, word):
    assert thermal_from_ios(raw) == word


@pytest.mark.parametrize("temp,word", [(None, "unknown"), (30.5, "nominal"), (35.5, "fair"),
                                       (40.5, "serious"), (45.5, "critical")])
def test_thermal_estimate_from_battery_temperature(temp, word):
    assert thermal_from_battery_temperature(temp) == word

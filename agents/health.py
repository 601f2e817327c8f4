"""Device health gating: may this device run this job now, wait, or give it away?

Pure functions over ``agents.protocols.Health`` so the policy is testable without a device
and the same for every driver. A benchmark on a hot or nearly empty phone measures the
throttling, not the model, so gating is about measurement quality as much as safety.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from agents.protocols import Health

THERMAL_OK = ("nominal", "fair")
THERMAL_ORDER = ("nominal", "fair", "serious", "critical")


@dataclass(frozen=True)
class HealthPolicy:
    # iOS enables Low Power Mode around 20 %, which throttles the CPU/GPU; stay well above it.
    min_battery_pct: float = 30.0
    # A phone cools from "serious" to "fair" in a few minutes when idle; waiting longer than
    # this means the device (or its case/dock) is the problem, so the job goes elsewhere.
    max_cool_down_s: float = 300.0
    cool_down_step_s: float = 30.0
    # Room for result.json, the harness's own files and iOS's refusal to fill the last bytes.
    storage_margin_bytes: int = 512 * 1024 * 1024
    # The battery gauge reports this itself; above it iOS throttles regardless of thermalState.
    max_battery_temperature_c: float = 40.0


def evaluate(health: Health, model_bytes: int = 0, policy: HealthPolicy | None = None,
             waited_s: float = 0.0) -> Health:
    """Return a copy of ``health`` with ``ok``, ``problems`` and ``action`` set by the policy.

    ``waited_s`` is how long the caller has already spent cooling this device down for this
    job; past ``policy.max_cool_down_s`` a thermal problem becomes ``release``.
    Driver-reported problems (e.g. not paired) are kept and always mean ``release``.
    """
    policy = policy or HealthPolicy()
    problems = list(health.problems)
    release = bool(problems)
    cool = False

    level = health.battery_level
    if level is not None and level < policy.min_battery_pct and not health.charging:
        problems.append(f"battery {level:.0f}% < {policy.min_battery_pct:.0f}% and not charging")
        release = True

    thermal = health.thermal_state
    hot_battery = health.temperature_c is not None and health.temperature_c > policy.max_battery_temperature_c
    if thermal not in THERMAL_OK and thermal != "unknown":
        problems.append(f"thermal state {thermal}")
        cool = True
    if hot_battery:
        problems.append(f"battery temperature {health.temperature_c:.1f} C > "
                        f"{policy.max_battery_temperature_c:.1f} C")
        cool = True

    needed = model_bytes + policy.storage_margin_bytes
    if health.free_bytes is not None and health.free_bytes < needed:
        problems.append(f"free storage {health.free_bytes} B < {needed} B needed for the model")
        release = True

    if release:
        action = "release"
    elif cool:
        action = "cool_down" if waited_s + policy.cool_down_step_s <= policy.max_cool_down_s else "release"
    else:
        action = "run"
    return replace(health, ok=action == "run", problems=problems, action=action)


def cool_down_wait_s(health: Health, policy: HealthPolicy | None = None, waited_s: float = 0.0) -> float:
    """How long to wait before re-checking a device whose action is ``cool_down`` (0 otherwise)."""
    policy = policy or HealthPolicy()
    if health.action != "cool_down":
        return 0.0
    return max(0.0, min(policy.cool_down_step_s, policy.max_cool_down_s - waited_s))


def thermal_from_ios(value: object) -> str:
    """Map what iOS reports (ProcessInfo.ThermalState ints 0-3 or names) to our four words."""
    if isinstance(value, bool):
        return "unknown"
    if isinstance(value, int) and 0 <= value < len(THERMAL_ORDER):
        return THERMAL_ORDER[value]
    if isinstance(value, str):
        word = value.strip().lower().removeprefix("nsprocessinfothermalstate")
        if word in THERMAL_ORDER:
            return word
    return "unknown"


# iOS exposes no thermal state over lockdown; the battery gauge's temperature tracks it closely
# enough to gate on (the harness records the real ProcessInfo.thermalState in the result).
BATTERY_TEMPERATURE_STEPS_C = ((35.0, "nominal"), (40.0, "fair"), (45.0, "serious"))


def thermal_from_battery_temperature(temperature_c: float | None) -> str:
    """Estimate the thermal state from the battery temperature (unknown without a reading)."""
    if temperature_c is None:
        return "unknown"
    for limit, state in BATTERY_TEMPERATURE_STEPS_C:
        if temperature_c < limit:
            return state
    return "critical"

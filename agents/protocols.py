"""Small capability protocols (labgrid style) and the data they exchange.

A *resource* is what exists (a phone at a UDID, the host CPU); a *driver* implements
these protocols for the resources it binds to. The agent only talks to protocols.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class DriverError(RuntimeError):
    """A failure of the infrastructure (not of the model), with a category for retry policy."""

    CATEGORIES = ("device_lost", "not_paired", "install_failed", "launch_failed", "timeout",
                  "harness_crashed", "bad_result", "unhealthy", "transfer_failed", "other")

    def __init__(self, category: str, message: str):
        if category not in self.CATEGORIES:
            category = "other"
        self.category = category
        super().__init__(f"{category}: {message}")


@dataclass
class DeviceInfo:
    id: str  # stable: UDID for phones, "host:<hostname>" for the host CPU
    device_class: str
    product_type: str
    name: str
    os: str
    os_version: str
    chip: str
    host: str
    driver: str
    simulated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Health:
    ok: bool
    battery_level: float | None = None
    charging: bool | None = None
    temperature_c: float | None = None
    thermal_state: str = "unknown"  # nominal | fair | serious | critical | unknown
    free_bytes: int | None = None
    problems: list[str] = field(default_factory=list)
    # "cool_down": wait and re-check; "release": give the job to another device
    action: str = "run"
    # a device condition that needs a person, not a retry: developer_mode_off | ddi_missing
    # (agents.drivers.ios_developer); the device takes that state until it is fixed
    condition: str = ""


@runtime_checkable
class DiscoveryProtocol(Protocol):
    def discover(self) -> list[DeviceInfo]: ...


@runtime_checkable
class HealthProtocol(Protocol):
    def health(self, device: DeviceInfo) -> Health: ...


@runtime_checkable
class BenchmarkProtocol(Protocol):
    """prepare (install harness, push model and job) -> run (launch, wait, pull) -> cleanup."""

    def prepare(self, device: DeviceInfo, job: dict[str, Any], model_path: Path) -> None: ...

    def run(self, device: DeviceInfo, job: dict[str, Any]) -> bytes: ...

    def cleanup(self, device: DeviceInfo, job: dict[str, Any]) -> None: ...


class Driver(DiscoveryProtocol, HealthProtocol, BenchmarkProtocol, Protocol):
    name: str

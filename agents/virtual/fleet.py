"""Fleet description (YAML): which virtual devices, on which virtual host, with which faults.

Validated by ``orchestrator.spec.yamlpos.load_validated``, so a mistake reads
``virtual-fleet.yaml:12: hosts[0].devices[1].product_type: ...``. See
``examples/virtual-fleet.yaml``. UDIDs are derived from (seed, host, name, index):
the same file gives the same UDIDs on every start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from agents.virtual.device import VirtualDevice
from agents.virtual.faults import Chaos, FaultError, normalize
from agents.virtual.server import VirtualFleetServer
from device_inventory.catalog import ImpossibleOsVersion, UnknownProductType, catalog
from orchestrator.spec.yamlpos import load_validated

# Which versions a model can run comes from the catalog (shipped with .. newest supported), and
# the build number of each offered version too: iOS <= 16 launches through DVT over lockdown,
# iOS 17.4+ through the CoreDeviceProxy tunnel and RSD (17.0-17.3 need RemotePairing over
# Bonjour, which the virtual device does not serve, and the catalog lists no build for them).
VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaultSpec(_Strict):
    kind: str
    count: int | None = Field(default=None, ge=1)
    duration_s: float | None = Field(default=None, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> FaultSpec:
        try:
            self.kind, self.params = normalize(self.kind, dict(self.params))
        except FaultError as exc:
            raise ValueError(str(exc)) from None
        return self


class BatterySpec(_Strict):
    level: float = Field(default=87.0, ge=0, le=100)
    charging: bool = True


class DeviceSpec(_Strict):
    product_type: str
    ios: str = Field(description="ProductVersion, e.g. 26.1")
    name: str | None = None
    count: int = Field(default=1, ge=1, le=10000)
    tls: bool | None = None
    battery: BatterySpec = Field(default_factory=BatterySpec)
    faults: list[FaultSpec] = Field(default_factory=list)

    @field_validator("product_type")
    @classmethod
    def _in_catalog(cls, value: str) -> str:
        try:
            klass = catalog().class_of_product(value)
        except UnknownProductType as exc:
            raise ValueError(str(exc).strip("'\"")) from None
        if klass.kind != "ios":
            raise ValueError(f"{value} is a {klass.kind} device, not an iOS one")
        return value

    @field_validator("ios", mode="before")
    @classmethod
    def _version(cls, value: Any, info: ValidationInfo) -> str:
        text = str(value)
        if not VERSION_RE.match(text):
            raise ValueError(f"iOS version must look like 26.1 or 16.7.10, got {text!r}")
        ptype = info.data.get("product_type")
        if ptype is not None:  # None: product_type itself failed and says so
            try:
                catalog().check_device(ptype, text)
            except ImpossibleOsVersion as exc:
                raise ValueError(str(exc)) from None
        return text


class HostSpec(_Strict):
    name: str = Field(min_length=1, max_length=64)
    devices: list[DeviceSpec] = Field(min_length=1)


class Defaults(_Strict):
    tls: bool = True
    time_compression: float = Field(default=50.0, gt=0)
    min_run_s: float = Field(default=0.2, ge=0)


class ChaosSpec(_Strict):
    seed: int
    interval_s: float = Field(default=5.0, gt=0)
    duration_s: float = Field(default=3.0, gt=0)
    probabilities: dict[str, float]

    def build(self) -> Chaos:
        return Chaos(self.seed, self.interval_s, dict(self.probabilities), self.duration_s)

    @model_validator(mode="after")
    def _kinds(self) -> ChaosSpec:
        try:
            self.build()
        except FaultError as exc:
            raise ValueError(str(exc)) from None
        return self


class FleetSpec(_Strict):
    version: Literal[1] = 1
    seed: int = 0
    defaults: Defaults = Field(default_factory=Defaults)
    hosts: list[HostSpec] = Field(min_length=1)
    chaos: ChaosSpec | None = None

    @model_validator(mode="after")
    def _unique_hosts(self) -> FleetSpec:
        names = [h.name for h in self.hosts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate host names: {', '.join(dupes)}")
        return self

    @classmethod
    def default(cls) -> FleetSpec:
        """One device per seed chip: A17 Pro and M2 on iOS 26, A15 on iOS 18."""
        return cls(hosts=[HostSpec(name="virtual", devices=[
            DeviceSpec(product_type="iPhone16,1", ios="26.1"),
            DeviceSpec(product_type="iPhone14,5", ios="18.6.2"),
            DeviceSpec(product_type="iPad14,3", ios="26.1"),
        ])])


def load_fleet(path: str | Path) -> FleetSpec:
    return load_validated(FleetSpec, path)


def build_server(spec: FleetSpec, host: str | None = None, time_compression: float | None = None,
                 tls: bool | None = None, min_run_s: float | None = None) -> VirtualFleetServer:
    """A server for the fleet's devices (only ``host``'s when given); faults apply at start."""
    hosts = [h for h in spec.hosts if host is None or h.name == host]
    if not hosts:
        raise ValueError(f"no host {host!r} in the fleet (hosts: {', '.join(h.name for h in spec.hosts)})")
    d = spec.defaults
    server = VirtualFleetServer(chaos=spec.chaos.build() if spec.chaos else None)
    for h in hosts:
        index = 0
        for ds in h.devices:
            for _ in range(ds.count):
                index += 1
                name = ds.name or catalog().product(ds.product_type).name
                device = VirtualDevice(
                    index, ds.product_type, ds.ios, f"{name} ({h.name}-{index})" if ds.count > 1 or not ds.name
                    else name, seed=spec.seed, host=h.name,
                    tls=tls if tls is not None else (ds.tls if ds.tls is not None else d.tls),
                    time_compression=d.time_compression if time_compression is None else time_compression,
                    min_run_s=d.min_run_s if min_run_s is None else min_run_s,
                    battery_level=ds.battery.level, charging=ds.battery.charging,
                )
                server.add_device(device, announce=False)
                server.initial_faults.extend(
                    (device.udid, f.kind, {"count": f.count, "duration_s": f.duration_s, **f.params})
                    for f in ds.faults)
    return server

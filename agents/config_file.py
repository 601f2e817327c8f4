"""The agent's config file (``benchfarm agent --config agent.yaml``).

Validated with :func:`orchestrator.spec.yamlpos.load_validated`, like every other YAML
input, so a typo is reported as ``agent.yaml:7: drivers.ios.startup_alowance_s: Extra
inputs are not permitted``. Every field is optional: a field left out keeps the
command's default, and a flag given on the command line overrides the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator

from orchestrator.spec.types import StrictModel
from orchestrator.spec.yamlpos import SpecError, load_validated


class _Options(StrictModel):
    def options(self) -> dict[str, Any]:
        """The keyword arguments for the driver: only what the file set, so the driver's
        own defaults apply to the rest."""
        return self.model_dump(exclude_none=True)


class IosOptions(_Options):
    """Keyword arguments of :class:`agents.drivers.ios.IosDriver`."""

    usbmux_address: str | None = None
    harness_ipa: str | None = None
    startup_allowance_s: float | None = Field(default=None, gt=0)
    call_timeout_s: float | None = Field(default=None, gt=0)
    poll_interval_s: float | None = Field(default=None, gt=0)
    pairing_records_dir: str | None = None
    ios17_tunnel: Literal["userspace", "tunneld"] | None = None
    # where the shared tunneld listens (ios17_tunnel: tunneld); pymobiledevice3's default 127.0.0.1:49151
    tunneld_address: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:\[\]-]+:\d{1,5}$")


class HostOptions(_Options):
    """The host driver has no options of its own (its slots come from ``host_slots``);
    the section only says the driver is wanted."""


class Drivers(StrictModel):
    ios: IosOptions | None = None
    host: HostOptions | None = None

    @field_validator("ios", "host", mode="before")
    @classmethod
    def _bare_key(cls, value: Any) -> Any:
        # ``host:`` with nothing after it is how YAML spells "this driver, no options"
        return {} if value is None else value

    def names(self) -> list[str]:
        return [n for n in ("host", "ios") if getattr(self, n) is not None]


Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_.-]{1,64})?$")]


class AgentFile(StrictModel):
    name: str | None = Field(default=None, min_length=1)
    lease_ttl_s: float | None = Field(default=None, gt=0)
    host_slots: int | None = Field(default=None, ge=1)
    drivers: Drivers | None = None
    # matched by spec selectors such as ``A15 label=lab-b``: on every device of this agent,
    # and per device id (UDID, ``host:<name>:<slot>``)
    labels: list[Label] | None = None
    device_labels: dict[str, list[Label]] | None = None


def load_agent_file(path: str | Path) -> AgentFile:
    """Read and validate an agent config file; raises ``SpecError`` naming file:line:field.
    The iOS driver's paths may start with ``~``; relative ones are relative to the file."""
    conf = load_validated(AgentFile, path)
    ios = conf.drivers.ios if conf.drivers else None
    if ios is None or conf.drivers is None:
        return conf
    base = Path(path).resolve().parent
    paths = {k: str(base / Path(v).expanduser()) for k in ("harness_ipa", "pairing_records_dir")
             if (v := getattr(ios, k))}
    drivers = conf.drivers.model_copy(update={"ios": ios.model_copy(update=paths)})
    return conf.model_copy(update={"drivers": drivers})


def inventory_labels() -> list[str]:
    """Labels a host inventory gave this host (``BENCHFARM_HOST_LABELS``, written into
    ``agent.env`` by ``benchfarm hosts bootstrap``): ``{rack: a}`` becomes ``rack:a``."""
    raw = os.environ.get("BENCHFARM_HOST_LABELS", "")
    try:
        labels = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        raise SpecError([f"BENCHFARM_HOST_LABELS: not JSON: {raw[:80]!r}"]) from None
    if not isinstance(labels, dict):
        raise SpecError(["BENCHFARM_HOST_LABELS: must be a JSON object of key: value"])
    return [f"{k}:{v}" for k, v in sorted(labels.items())]


def resolve(conf: AgentFile, *, drivers: list[str] | None = None, name: str = "", host_slots: int | None = None,
            lease_ttl_s: float | None = None, ios: dict[str, Any] | None = None,
            labels: list[str] | None = None) -> AgentFile:
    """Merge command-line flags over the file: a flag that was given (not None / "" / [])
    wins, the file fills in the rest, the built-in defaults whatever neither set.
    ``ios``: driver options from flags, merged key by key over the file's ``drivers.ios``."""
    chosen = drivers or (conf.drivers.names() if conf.drivers else []) or ["host"]
    ios_options = {**(conf.drivers.ios.options() if conf.drivers and conf.drivers.ios else {}), **(ios or {})}
    merged = {
        "name": name or conf.name,
        "host_slots": host_slots if host_slots is not None else (conf.host_slots or 1),
        "lease_ttl_s": lease_ttl_s if lease_ttl_s is not None else (conf.lease_ttl_s or 30.0),
        "drivers": {d: (ios_options if d == "ios" else {}) for d in chosen},
        "labels": sorted(set(conf.labels or []) | set(labels or [])),
        "device_labels": conf.device_labels or {},
    }
    # through validation again: a flag's value obeys the same rules as the file's
    try:
        return AgentFile.model_validate(merged)
    except ValidationError as exc:
        raise SpecError([f"command line: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None

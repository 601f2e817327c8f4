"""Backend registry: loads ``backends.yaml`` and answers where a backend can be lowered and run.

The file goes through :func:`orchestrator.spec.yamlpos.load_validated` like every YAML
input, so a typo in an entry (an unknown partitioner, an exporter platform that does not
exist) is reported as ``backends.yaml:LINE: field: problem`` when the registry loads,
not as a KeyError in the middle of an export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, RootModel, model_validator

from orchestrator.export.lowering import PARTITIONERS, QUANTIZERS
from orchestrator.spec.types import StrictModel as _Strict
from orchestrator.spec.yamlpos import load_validated

REGISTRY_PATH = Path(__file__).with_name("backends.yaml")


class UnknownBackend(ValueError):
    pass




class LoweringSpec(_Strict):
    partitioner: str
    quantizer: str | None = None
    precision: Literal["fp32", "fp16", "int8"]
    compute_units: str | None = None

    @model_validator(mode="after")
    def _known_names(self) -> LoweringSpec:
        if self.partitioner not in PARTITIONERS:
            raise ValueError(f"unknown partitioner {self.partitioner!r} (known: {', '.join(PARTITIONERS)})")
        if self.quantizer is not None and self.quantizer not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {self.quantizer!r} (known: {', '.join(QUANTIZERS)})")
        return self


class BackendEntry(_Strict):
    display: str = Field(min_length=1)
    aliases: list[str] = []
    lowering: LoweringSpec
    exporters: list[Literal["linux", "macos"]] = Field(min_length=1)
    runs_on: list[str] = Field(min_length=1)
    runtime: str = Field(min_length=1)
    options: dict[str, list[str]] = {}

    @model_validator(mode="after")
    def _defaults_allowed(self) -> BackendEntry:
        for name, allowed in self.options.items():
            default = self.lowering.model_dump().get(name)
            if default is not None and default not in allowed:
                raise ValueError(f"lowering.{name} default {default!r} is not one of options.{name}")
        return self


class RegistryFile(RootModel[dict[str, BackendEntry]]):
    pass


@dataclass(frozen=True)
class Backend:
    name: str
    display: str
    lowering: dict[str, Any]
    exporters: tuple[str, ...]
    runs_on: tuple[str, ...]
    runtime: str
    aliases: tuple[str, ...] = ()
    options: dict[str, list[str]] = field(default_factory=dict)

    def can_export_on(self, platform: str) -> bool:
        return platform in self.exporters

    def runs_on_class(self, device_class: str) -> bool:
        return device_class in self.runs_on

    def export_options(self, requested: dict[str, Any]) -> dict[str, Any]:
        """The values of this backend's declared options (e.g. ``compute_units``) for one export.

        Only declared options are taken from the request, so a request parameter that
        a backend ignores (compute units for XNNPACK) never changes its artifact key.
        """
        chosen: dict[str, Any] = {}
        for name, allowed in self.options.items():
            value = requested.get(name) or self.lowering.get(name) or allowed[0]
            if value not in allowed:
                raise ValueError(f"backend {self.name}: {name}={value!r} is not one of {', '.join(allowed)}")
            chosen[name] = value
        return chosen


@dataclass(frozen=True)
class BackendRegistry:
    backends: dict[str, Backend]

    @classmethod
    def load(cls, path: Path = REGISTRY_PATH) -> BackendRegistry:
        raw = load_validated(RegistryFile, path).root
        backends = {
            name: Backend(
                name=name,
                display=e.display,
                lowering=e.lowering.model_dump(),
                exporters=tuple(e.exporters),
                runs_on=tuple(e.runs_on),
                runtime=e.runtime,
                aliases=tuple(e.aliases),
                options={k: list(v) for k, v in e.options.items()},
            )
            for name, e in raw.items()
        }
        return cls(backends)

    def names(self) -> list[str]:
        return list(self.backends)

    def resolve(self, name: str) -> Backend:
        key = name.strip().lower()
        for b in self.backends.values():
            if key == b.name or key in (a.lower() for a in b.aliases) or key == b.display.lower():
                return b
        raise UnknownBackend(f"unknown backend {name!r} (known: {', '.join(self.backends)})")


@lru_cache(maxsize=1)
def registry() -> BackendRegistry:
    return BackendRegistry.load()

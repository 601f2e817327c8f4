"""Backend registry: loads ``backends.yaml`` and answers where a backend can be lowered and run."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REGISTRY_PATH = Path(__file__).with_name("backends.yaml")


class UnknownBackend(ValueError):
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


@dataclass(frozen=True)
class BackendRegistry:
    backends: dict[str, Backend]

    @classmethod
    def load(cls, path: Path = REGISTRY_PATH) -> BackendRegistry:
        raw = yaml.safe_load(path.read_text())
        backends = {
            name: Backend(
                name=name,
                display=e["display"],
                lowering=dict(e["lowering"]),
                exporters=tuple(e["exporters"]),
                runs_on=tuple(e["runs_on"]),
                runtime=e["runtime"],
                aliases=tuple(e.get("aliases", [])),
                options={k: list(v) for k, v in (e.get("options") or {}).items()},
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

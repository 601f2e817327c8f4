"""The host inventory (``hosts.yaml``): which machines the farm runs on and how to reach them.

Validated with :func:`orchestrator.spec.yamlpos.load_validated`, so a typo is reported as
``hosts.yaml:12: hosts[1].device_classes[0]: unknown device class 'A71'``. Device class
names are resolved against the catalog and stored as class ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from orchestrator.spec.types import DeviceClassName as ClassName
from orchestrator.spec.types import StrictModel as _Strict
from orchestrator.spec.yamlpos import load_validated

Role = Literal["agent", "exporter", "harness-builder"]
# Where a host keeps its venv, wheels, config, logs and drain marker, relative to the
# login user's home unless absolute. One directory makes a host easy to wipe.
DEFAULT_BASE_DIR = "~/.benchfarm"






class Host(_Strict):
    """One machine reachable over SSH."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    hostname: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str
    key_file: str | None = None
    # Name of an environment variable holding the key's passphrase: the secret itself
    # never sits in the inventory (which is committed) nor in any log line.
    passphrase_env: str | None = None
    platform: Literal["macos", "linux"]
    roles: list[Role] = Field(min_length=1)
    device_classes: list[ClassName] = []
    labels: dict[str, str] = {}
    base_dir: str = DEFAULT_BASE_DIR
    python: str = "python3"
    # Extra PATH entries for remote commands: a non-interactive ssh session on macOS does
    # not read the login profile, so Homebrew's /opt/homebrew/bin (xcodegen) is missing.
    env_path: list[str] = []

    @model_validator(mode="after")
    def _check_roles(self) -> Host:
        if "harness-builder" in self.roles and self.platform != "macos":
            raise ValueError("role harness-builder needs platform macos (xcodebuild only runs on macOS)")
        if len(set(self.roles)) != len(self.roles):
            raise ValueError(f"duplicate roles in {self.roles}")
        return self

    @property
    def address(self) -> str:
        """The known_hosts spelling of this endpoint: ``[host]:port`` unless port 22."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


class Inventory(_Strict):
    known_hosts: str = "~/.ssh/known_hosts"
    hosts: list[Host] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Inventory:
        seen: dict[str, str] = {}
        for host in self.hosts:
            for key in (f"name {host.name}", f"endpoint {host.address}"):
                if key in seen:
                    raise ValueError(f"duplicate host {key}")
                seen[key] = host.name
        return self

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host named {name!r} in the inventory (known: {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [h.name for h in self.hosts]


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate ``hosts.yaml``; relative key/known_hosts paths are relative to it."""
    path = Path(path)
    inv = load_validated(Inventory, path)
    base = path.resolve().parent

    def local(p: str) -> str:
        expanded = Path(p).expanduser()
        return str(expanded if expanded.is_absolute() else base / expanded)

    hosts = [h.model_copy(update={"key_file": local(h.key_file)}) if h.key_file else h for h in inv.hosts]
    return inv.model_copy(update={"known_hosts": local(inv.known_hosts), "hosts": hosts})

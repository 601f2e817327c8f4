"""Drivers implement the capability protocols of ``agents.protocols`` for one kind of resource."""

from __future__ import annotations

from typing import Any

from agents.protocols import Driver


def make_driver(name: str, **options: Any) -> Driver:
    """Build a driver by name (``host``, ``ios``); imports lazily so a host-only agent
    never loads pymobiledevice3 and an iOS-only one never loads executorch."""
    if name == "host":
        from agents.drivers.host import HostDriver

        return HostDriver(**options)
    if name == "ios":
        from agents.drivers.ios import IosDriver

        return IosDriver(**options)
    raise ValueError(f"unknown driver {name!r} (known: host, ios)")

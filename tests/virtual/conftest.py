"""Fixtures for the virtual device suite: a running fleet and a private pymobiledevice3 home.

Each test gets its own fleet (starting one takes milliseconds) and a HOME of its own, so
pair records that pymobiledevice3 caches never leak between tests or from the machine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.virtual.fleet import DeviceSpec, FleetSpec, HostSpec
from agents.virtual.testing import FleetHandle, running_fleet

A17, A15, M2 = "iPhone16,1", "iPhone14,5", "iPad14,3"


def spec(*devices: tuple[str, str], tls: bool = True) -> FleetSpec:
    return FleetSpec(
        defaults={"tls": tls, "time_compression": 1000.0, "min_run_s": 0.05},
        hosts=[HostSpec(name="test", devices=[DeviceSpec(product_type=p, ios=v) for p, v in devices])],
    )


@pytest.fixture
def client_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture(params=[True, False], ids=["tls", "plain"])
def fleet(request: pytest.FixtureRequest, client_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetHandle]:
    """Three devices (A17 Pro, A15, M2), with lockdown/service TLS on and off."""
    with running_fleet(spec((A17, "26.1"), (A15, "18.6.2"), (M2, "26.1"), tls=request.param)) as handle:
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", handle.usbmux_address)
        yield handle


@pytest.fixture
def one_device(client_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetHandle]:
    with running_fleet(spec((A15, "16.6"))) as handle:
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", handle.usbmux_address)
        yield handle


def pmd(*args: str, env_extra: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the pymobiledevice3 CLI as a subprocess with this process's (patched) environment."""
    env = {**os.environ, **(env_extra or {}), "PYMOBILEDEVICE3_NO_COLOR": "1", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "pymobiledevice3", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def run(coro):  # noqa: ANN001, ANN201 - a thin asyncio.run for readability in tests
    return asyncio.run(coro)

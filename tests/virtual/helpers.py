"""Builders for the virtual device tests: an .ipa, a job document, a lockdown client."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import plistlib
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pymobiledevice3.lockdown import UsbmuxLockdownClient, create_using_usbmux

from agents.virtual.device import HARNESS_BUNDLE_ID

HARNESS_HASH = "0f3c9a7e"


def make_ipa(directory: Path, bundle_id: str = HARNESS_BUNDLE_ID, version: str = "42",
             extra: dict[str, Any] | None = None) -> Path:
    """A minimal .ipa: Payload/<name>.app/Info.plist (+ a fake executable)."""
    name = bundle_id.rsplit(".", 1)[-1].capitalize()
    info = {"CFBundleIdentifier": bundle_id, "CFBundleExecutable": name, "CFBundleVersion": version,
            "CFBundleShortVersionString": "1.0", "BenchfarmHarnessHash": HARNESS_HASH, **(extra or {})}
    path = directory / f"{name}-{version}.ipa"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"Payload/{name}.app/Info.plist", plistlib.dumps(info))
        zf.writestr(f"Payload/{name}.app/{name}", b"\xcf\xfa\xed\xfe" + b"\x00" * 64)
    return path


def make_job(model: bytes, backend: str = "xnnpack", iterations: int = 50, warmup: int = 5,
             timeout_s: float = 600, **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": 1, "job_id": "job-1", "attempt_id": "att-1", "attempt_token": 7,
        "model_file": "model.pte", "model_sha256": hashlib.sha256(model).hexdigest(), "backend": backend,
        "compute_units": "all", "input_shape": [1, 3, 224, 224], "warmup": warmup, "iterations": iterations,
        "timeout_s": timeout_s, "golden_input": {"kind": "seeded-uniform", "seed": 0}, **extra,
    }


async def lockdown(udid: str, home: Path, autopair: bool = False) -> UsbmuxLockdownClient:
    return await create_using_usbmux(serial=udid, autopair=autopair, pairing_records_cache_folder=home)


async def stage_harness(ld: UsbmuxLockdownClient, directory: Path, job: dict[str, Any], model: bytes) -> None:
    """What the iOS driver does before a launch: install the harness, push the model and job.json."""
    import json

    from pymobiledevice3.services.house_arrest import HouseArrestService
    from pymobiledevice3.services.installation_proxy import InstallationProxyService

    async with InstallationProxyService(ld) as ip:
        await ip.install_from_local(make_ipa(directory))
    async with await HouseArrestService.create(ld, HARNESS_BUNDLE_ID, documents_only=True) as ha:
        await ha.set_file_contents(f"/Documents/{job['model_file']}", model)
        await ha.set_file_contents("/Documents/job.json", json.dumps(job).encode())


async def read_result(ld: UsbmuxLockdownClient) -> bytes | None:
    from pymobiledevice3.services.house_arrest import HouseArrestService

    async with await HouseArrestService.create(ld, HARNESS_BUNDLE_ID, documents_only=True) as ha:
        if not await ha.exists("/Documents/result.json"):
            return None
        return await ha.get_file_contents("/Documents/result.json")


@contextlib.asynccontextmanager
async def developer_services(ld: UsbmuxLockdownClient) -> AsyncIterator[Any]:
    """Where DVT lives: lockdown up to iOS 16, an RSD behind a userspace CoreDeviceProxy tunnel
    from iOS 17 (as on a real phone; the tunnel's lockdown follows USBMUXD_SOCKET_ADDRESS)."""
    if int(ld.product_version.split(".")[0]) < 17:
        yield ld
        return
    from pymobiledevice3.remote.userspace_tunnel import UserspaceRsdTunnel

    async with UserspaceRsdTunnel(serial=ld.udid, autopair=False) as rsd:
        yield rsd


async def run_harness(ld: UsbmuxLockdownClient, wait_s: float = 10.0) -> tuple[int, bytes | None, int]:
    """Launch the harness over DVT, wait until it exits (or wait_s passes).

    Returns (pid, result bytes or None, pid still running or 0).
    """
    import time

    from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
    from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl

    async with developer_services(ld) as provider, DvtProvider(provider) as dvt, ProcessControl(dvt) as pc:
        pid = await pc.launch(HARNESS_BUNDLE_ID, arguments=["--job", "job.json"], environment={"BF": "1"})
        deadline = time.monotonic() + wait_s
        running = pid
        while time.monotonic() < deadline:
            running = await pc.process_identifier_for_bundle_identifier(HARNESS_BUNDLE_ID)
            if running == 0:
                break
            await asyncio.sleep(0.05)
    return pid, await read_result(ld), running

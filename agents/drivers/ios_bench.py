"""The benchmark steps of the iOS driver, async: install, push, launch, wait, pull, kill, clean.

Each function takes a connected ``Session``; ``agents.drivers.ios.IosDriver`` owns the
event loop, the sessions and the sync facade. Paths are inside the harness container as
house_arrest vends it (``VendDocuments``: rooted at the container, ``Documents/`` inside).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from pymobiledevice3.services.afc import AfcService
from pymobiledevice3.services.house_arrest import HouseArrestService
from pymobiledevice3.services.installation_proxy import InstallationProxyService

from agents.drivers import ios_logs, ios_metrics
from agents.drivers.ios_ipa import HARNESS_BUNDLE_ID, IpaInfo
from agents.drivers.ios_session import Session, close_quietly
from agents.harness.contract import JOB_FILE, RESULT_FILE, ContractError, parse_result
from agents.protocols import DriverError

DOCS = "/Documents"
# USB 2 AFC moves ~20-30 MB/s; budget a pessimistic 2 MB/s plus a fixed allowance, so a
# 200 MB model gets ~2 min before the push counts as stuck.
TRANSFER_BYTES_PER_S = 2 * 1024 * 1024
TRANSFER_ALLOWANCE_S = 30.0
# installd verifies signatures and unpacks; a large .ipa on an old phone takes a minute or two.
INSTALL_TIMEOUT_S = 300.0


def transfer_timeout(nbytes: int) -> float:
    return TRANSFER_ALLOWANCE_S + nbytes / TRANSFER_BYTES_PER_S


async def ensure_harness(s: Session, ipa: IpaInfo, known_hash: str | None) -> bool:
    """Install the harness unless the same build is already there (Lookup first). True if installed."""
    assert s.lockdown is not None
    async with s.step("install", bundle_id=ipa.bundle_id, version=ipa.version) as entry:
        async with s.service("installation_proxy", InstallationProxyService(s.lockdown), "install_failed") as iproxy:
            found = await s.call("lookup", iproxy.lookup({"BundleIDs": [ipa.bundle_id]}), "install_failed")
            reason = ipa.differs_from((found or {}).get(ipa.bundle_id), known_hash)
            entry["reason"] = reason or "same build installed"
            if reason is None:
                return False
            await s.call("install", iproxy.install_from_local(ipa.path), "install_failed",
                         timeout=INSTALL_TIMEOUT_S + transfer_timeout(ipa.path.stat().st_size))
    return True


@contextlib.asynccontextmanager
async def container(s: Session):
    assert s.lockdown is not None
    ha = await s.call("house_arrest", HouseArrestService.create(s.lockdown, HARNESS_BUNDLE_ID, documents_only=True),
                      "install_failed")
    try:
        yield ha
    finally:
        await close_quietly(ha)


async def push_job(s: Session, job: dict[str, Any], model_path: Path) -> None:
    """Put the model and job.json into Documents/, removing any result of an earlier attempt."""
    size = model_path.stat().st_size
    async with container(s) as ha:
        await s.call("remove stale result", ha.rm_single(f"{DOCS}/{RESULT_FILE}", force=True), "transfer_failed")
        async with s.step("push_model", bytes=size):
            remote = f"{DOCS}/{job['model_file']}"
            # push() streams in chunks: a model of hundreds of MB never sits in memory whole.
            await s.call("push model", ha.push(str(model_path), remote, progress_bar=False), "transfer_failed",
                         timeout=transfer_timeout(size))
            pushed = int((await s.call("stat model", ha.stat(remote), "transfer_failed"))["st_size"])
            if pushed != size:
                raise DriverError("transfer_failed", f"pushed {size} bytes of the model, device has {pushed}")
        async with s.step("push_job"):
            await s.call("push job", ha.set_file_contents(f"{DOCS}/{JOB_FILE}", json.dumps(job).encode()),
                         "transfer_failed")


async def run_harness(s: Session, job: dict[str, Any], startup_s: float, poll_s: float,
                      simulated: bool) -> tuple[bytes, dict[str, Any]]:
    """Launch the harness, wait for result.json (bounded by the job's timeout), pull it, kill.
    Returns the raw result and the device's own figures for the harness process
    (``agents.drivers.ios_metrics``), sampled while it ran."""
    deadline_s = float(job["timeout_s"]) + startup_s
    launched = time.time()
    try:
        async with container(s) as ha, s.process_control() as pc, ios_logs.capture(s, HARNESS_BUNDLE_ID) as logs:
            async with s.step("launch"):
                pid = await s.call("launch", pc.launch(
                    HARNESS_BUNDLE_ID, arguments=["--benchfarm-job", f"Documents/{JOB_FILE}"],
                    environment={"BENCHFARM_ATTEMPT_ID": str(job["attempt_id"])}, kill_existing=True),
                    "launch_failed")
            logs.pid = pid
            try:
                async with s.step("wait_result", pid=pid, budget_s=round(deadline_s, 1)) as entry:
                    async with ios_metrics.sample(s, pid, simulated) as sampler:
                        entry["polls"] = await _wait_for_result(s, ha, pc, pid, deadline_s, poll_s)
                metrics = sampler.block()
                entry["device_metrics"] = {"memory_samples": (metrics["memory"] or {}).get("samples", 0),
                                           "energy_samples": (metrics["energy"] or {}).get("samples", 0),
                                           "missing": [m["source"] for m in metrics["missing"]]}
                async with s.step("pull_result"):
                    raw = await s.call("pull result", ha.get_file_contents(f"{DOCS}/{RESULT_FILE}"),
                                       "transfer_failed")
            finally:
                async with s.step("kill", pid=pid):
                    await _kill_quietly(s, pc, pid)
    except DriverError as exc:
        if exc.category == "harness_crashed":
            name = await ios_logs.attach_crash_report(s, HARNESS_BUNDLE_ID, launched)
            if name:
                raise DriverError(exc.category, f"{str(exc).removeprefix(exc.category + ': ')}; crash report "
                                                f"{name} attached to the attempt") from exc
        raise
    check_result(raw, job, simulated)
    return raw, metrics


async def _wait_for_result(s: Session, ha: AfcService, pc: Any, pid: int, budget_s: float,
                           poll_s: float) -> int:
    """Poll Documents/ for result.json; the harness gone without one is a crash."""
    result = f"{DOCS}/{RESULT_FILE}"
    deadline = time.monotonic() + budget_s
    polls = 0
    while True:
        polls += 1
        if await s.call("poll result", ha.exists(result), "transfer_failed"):
            return polls
        running = await s.call("poll pid", pc.process_identifier_for_bundle_identifier(HARNESS_BUNDLE_ID),
                               "harness_crashed")
        if running != pid:
            # It may have written the result and exited between our two questions.
            if await s.call("poll result", ha.exists(result), "transfer_failed"):
                return polls
            raise DriverError("harness_crashed", f"harness pid {pid} exited without writing {RESULT_FILE}")
        if time.monotonic() >= deadline:
            raise DriverError("timeout", f"no {RESULT_FILE} within {budget_s:.0f} s (job timeout + startup)")
        await asyncio.sleep(poll_s)


async def _kill_quietly(s: Session, pc: Any, pid: int) -> None:
    """Kill the harness if it still runs; an already exited harness is not an error."""
    with contextlib.suppress(Exception):
        if await s.call("pid", pc.process_identifier_for_bundle_identifier(HARNESS_BUNDLE_ID)) == pid:
            await s.call("kill", pc.kill(pid), "launch_failed")


def check_result(raw: bytes, job: dict[str, Any], simulated: bool) -> dict[str, Any]:
    """Contract check at the device boundary: schema, same attempt, honest simulation label."""
    try:
        doc = parse_result(raw)
    except ContractError as exc:
        raise DriverError("bad_result", str(exc)) from None
    for key in ("job_id", "attempt_id", "attempt_token"):
        if doc[key] != job[key]:
            raise DriverError("bad_result", f"result {key} {doc[key]!r} is not this attempt's {job[key]!r}")
    if simulated and not doc["simulated"]:
        raise DriverError("bad_result", "a virtual device returned a result not labelled simulated")
    return doc


async def clean_container(s: Session, job: dict[str, Any]) -> list[str]:
    """Kill a leftover harness and remove this attempt's files; returns what was removed."""
    async with s.process_control() as pc:
        pid = await s.call("pid", pc.process_identifier_for_bundle_identifier(HARNESS_BUNDLE_ID))
        if pid:
            await _kill_quietly(s, pc, pid)
    removed: list[str] = []
    async with container(s) as ha:
        for name in (JOB_FILE, RESULT_FILE, job["model_file"]):
            if await s.call(f"rm {name}", ha.rm_single(f"{DOCS}/{name}", force=True), "transfer_failed"):
                removed.append(name)
    return removed

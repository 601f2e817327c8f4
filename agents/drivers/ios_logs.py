"""The harness's log lines and, after a crash, its crash report: evidence attached to the attempt.

While the harness runs, os_trace_relay streams the device log; the lines of the harness's
pid (and launchd's / ReportCrash's about it) are kept, bounded. After a crash the newest
``.ips`` report for the harness bundle written since the launch is pulled through
crashreportcopymobile (after crashreportmover flushed pending ones). Both land on the
attempt's timeline (steps ``device_log`` and ``crash_report``), which the coordinator stores
with the attempt and ``benchfarm status RUN`` / the API show. Collecting evidence never fails
the attempt: a device that cannot stream logs just has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from pymobiledevice3.services.crash_reports import CrashReportsManager
from pymobiledevice3.services.os_trace import OsTraceService

from agents.drivers.ios_session import Session

log = logging.getLogger("agents.drivers.ios")
MAX_LINES = 400  # the end of a chatty harness's log is what explains its exit
MAX_REPORT_BYTES = 512 * 1024
REPORT_WAIT_S = 5.0  # ReportCrash writes the report a moment after the process died


class LogCapture:
    def __init__(self, bundle_id: str) -> None:
        self.bundle_id = bundle_id
        self.pid: int | None = None
        self.lines: deque[str] = deque(maxlen=MAX_LINES)
        self.error = ""

    def keep(self, entry: Any) -> None:
        ours = self.pid is not None and entry.pid == self.pid
        about = self.bundle_id in entry.message or (self.pid is not None and f"[{self.pid}]" in entry.message)
        if ours or about:
            name = posixpath.basename(entry.filename)
            self.lines.append(f"{entry.timestamp:%H:%M:%S.%f} {name}[{entry.pid}] <{entry.level.name}>: "
                              f"{entry.message}")


@contextlib.asynccontextmanager
async def capture(s: Session, bundle_id: str) -> AsyncIterator[LogCapture]:
    """Stream the device log in the background for as long as the block runs."""
    assert s.lockdown is not None
    cap = LogCapture(bundle_id)
    service = OsTraceService(s.lockdown)

    async def pump() -> None:
        try:
            async for entry in service.syslog():
                cap.keep(entry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            cap.error = f"{type(exc).__name__}: {exc}"[:300]

    task = asyncio.ensure_future(pump())
    try:
        yield cap
    finally:
        await asyncio.sleep(0.2)  # the last lines (the exit, the crash report saved) are on their way
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(service.close(), 5)
        async with s.step("device_log", lines=list(cap.lines)) as entry:
            if cap.error:
                entry["capture_error"] = cap.error


async def attach_crash_report(s: Session, bundle_id: str, since: float) -> str | None:
    """Pull the newest crash report of ``bundle_id`` written after ``since``; its name, or None."""
    assert s.lockdown is not None
    async with s.step("crash_report") as entry:
        try:
            found = await asyncio.wait_for(_find_report(s, bundle_id, since), REPORT_WAIT_S + 20)
        except Exception as exc:  # evidence is best effort: the failure itself is already known
            entry["error"] = f"{type(exc).__name__}: {exc}"[:300]
            return None
        if found is None:
            entry["found"] = False
            return None
        entry.update(found=True, name=found[0], text=found[1])
        return found[0]


async def _find_report(s: Session, bundle_id: str, since: float) -> tuple[str, str] | None:
    assert s.lockdown is not None
    deadline = time.monotonic() + REPORT_WAIT_S
    async with CrashReportsManager(s.lockdown) as crash:
        with contextlib.suppress(Exception):
            await crash.flush()  # iOS moves pending reports into the directory first
        while True:
            newest: tuple[float, str, str] | None = None
            for name in await crash.ls("/"):
                if not name.endswith(".ips"):
                    continue
                mtime = (await crash.afc.stat(name))["st_mtime"].timestamp()
                if mtime < since - 2 or (newest and mtime <= newest[0]):
                    continue
                text = (await crash.afc.get_file_contents(name))[:MAX_REPORT_BYTES].decode("utf-8", "replace")
                with contextlib.suppress(ValueError):
                    if json.loads(text.split("\n", 1)[0]).get("bundleID") == bundle_id:
                        newest = (mtime, name.lstrip("/"), text)
            if newest is not None:
                return newest[1], newest[2]
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.5)

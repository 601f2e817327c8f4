"""ETDumps kept as attempt artifacts, with retention.

The operator table of a profile lives in the database; the raw ETDump it was parsed from
is kept as a file beside the artifact store (``<store>/etdumps/<attempt>/<arm>.etdp``) so
an engineer can open it in ExecuTorch's Inspector later, for ``BENCHFARM_ETDUMP_RETENTION_DAYS``
(default 14): every new one prunes those older than that. Agents that reach the store only
through the API keep theirs locally under their own ``BENCHFARM_ARTIFACTS``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from orchestrator import config

log = logging.getLogger(__name__)
DIR = "etdumps"
_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def retention_s() -> float:
    return float(os.environ.get("BENCHFARM_ETDUMP_RETENTION_DAYS", "14")) * 86400


def keep(driver: Any, device: Any, job: dict[str, Any], doc: dict[str, Any], arm: str = "A",
         root: Path | None = None) -> None:
    """Copy the launch's ETDump out of the driver's job directory before cleanup and note
    where it went in the document's profile (``etdump_kept``). Never fails the launch."""
    profile = doc.get("profile") or {}
    name, fetch = profile.get("etdump_file"), getattr(driver, "fetch_file", None)
    if not name or fetch is None or not _SAFE.fullmatch(str(job["attempt_id"])) or not _SAFE.fullmatch(arm):
        return
    try:
        src = fetch(device, job, name)
        if src is None:
            return
        base = Path(root or config.artifacts_dir()) / DIR
        prune(base)
        dest = base / job["attempt_id"] / f"{arm}.etdp"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        profile["etdump_kept"] = f"{DIR}/{job['attempt_id']}/{arm}.etdp"
    except OSError:
        log.warning("could not keep the ETDump of %s", job["attempt_id"], exc_info=True)


def prune(base: Path, now: float | None = None) -> int:
    """Remove kept ETDumps older than the retention; returns how many attempts went."""
    if not base.is_dir():
        return 0
    cutoff = (now or time.time()) - retention_s()
    gone = 0
    for d in base.iterdir():
        try:
            if d.is_dir() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                gone += 1
        except OSError:
            continue
    return gone

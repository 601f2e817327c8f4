"""Lowering a torch model in a child process, so neither its code nor the lowering can take the exporter with it.

A registered package's factory is code from outside benchfarm: it may call ``os.abort()``,
``sys.exit()``, crash in native code or hang, and so may a lowering in native code. The
exporter worker (often the coordinator's own process, on a thread pool) therefore builds no
model itself: each export of a torch source runs in a fresh child forked from a *forkserver*
that has imported the export stack and lowered one tiny model (``orchestrator.export.preload``:
a process's first lowering pays tens of seconds of lazy set-up, a warm fork ~nothing), with no
core dumps, a scrubbed environment (no tokens, passwords or store URLs) and a private working
directory. A fresh child per export also means it imports the package's code as it is on
disk now, the same bytes its artifact key was computed from. Whatever the child does, the
parent gets a :class:`Produced` or an :class:`IsolatedExportFailed` naming what happened
(the exception, the signal, the timeout): a failed export with a reason, never a dead worker.

This is process isolation for robustness, not a security sandbox: only the operator's
registered packages (``orchestrator.export.trust``) ever get here.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import sys
import tempfile
from dataclasses import asdict
from functools import lru_cache
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.export.request import ExportRequest

if TYPE_CHECKING:
    from orchestrator.export.pipeline import Produced

DEFAULT_TIMEOUT_S = 1800.0
# what the model's code has no business reading: credentials and the farm's own stores
_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|PRIVATE|^DATABASE_URL$|^REDIS_URL$", re.I)
_PRELOAD = ["orchestrator.export.preload"]


class IsolatedExportFailed(RuntimeError):
    """The child lowering a registered package's model failed; the message says how."""


def timeout_s() -> float:
    return float(os.environ.get("BENCHFARM_EXPORT_TIMEOUT_S", DEFAULT_TIMEOUT_S))


@lru_cache(maxsize=1)
def _context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def child_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not _SECRET.search(k)}


def lower(req: ExportRequest) -> Produced:
    """Export and lower ``req`` (a torch source) in a child process; see the module doc."""
    from orchestrator.export.pipeline import Produced

    limit = timeout_s()
    with tempfile.TemporaryDirectory(prefix="benchfarm-export-") as tmp:
        out = Path(tmp)
        args = (asdict(req), str(out), list(sys.path), child_env(dict(os.environ)))
        proc = _context().Process(target=_child, args=args, name=f"export {req.model}", daemon=True)
        proc.start()
        proc.join(limit)
        if proc.is_alive():
            proc.kill()
            proc.join()
            raise IsolatedExportFailed(f"{req.source}: the export did not finish within {limit:.0f} s "
                                       "(BENCHFARM_EXPORT_TIMEOUT_S); its process was killed")
        if proc.exitcode != 0:
            raise IsolatedExportFailed(_why(req, out, proc.exitcode))
        info = json.loads((out / "info.json").read_text())
        golden = json.loads((out / "golden.json").read_text()) if (out / "golden.json").exists() else None
        etrecord = (out / "etrecord.bin").read_bytes() if (out / "etrecord.bin").exists() else None
        return Produced((out / "program.pte").read_bytes(), info, golden, etrecord)


def _why(req: ExportRequest, out: Path, code: int | None) -> str:
    err = out / "error.json"
    if err.exists():
        try:
            return str(json.loads(err.read_text())["error"])[:4000]
        except (ValueError, KeyError, TypeError):
            pass
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"{req.source}: the model's code killed its export process ({name})"
    return f"{req.source}: the model's code ended its export process with exit status {code}"


def _child(request: dict[str, Any], out: str, path: list[str], env: dict[str, str]) -> None:
    """In the forked child: become a clean exporter, lower, write the parts to ``out``."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ.clear()
    os.environ.update(env)
    sys.path[:] = path
    work = Path(out) / "cwd"
    work.mkdir()
    os.chdir(work)
    try:
        import torch

        torch.set_num_threads(int(env.get("OMP_NUM_THREADS", "0")) or os.cpu_count() or 1)
        from orchestrator.export.pipeline import lower_torch_source
        from orchestrator.export.registry import registry

        req = ExportRequest(**request)
        produced = lower_torch_source(req, registry().resolve(req.backend))
        (Path(out) / "program.pte").write_bytes(produced.program)
        (Path(out) / "info.json").write_text(json.dumps(produced.info))
        if produced.golden is not None:
            (Path(out) / "golden.json").write_text(json.dumps(produced.golden))
        if produced.etrecord:
            (Path(out) / "etrecord.bin").write_bytes(produced.etrecord)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from model code included
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        (Path(out) / "error.json").write_text(json.dumps({"error": message[:4000]}))
        sys.stdout.flush()
        os._exit(1)  # no atexit handlers of the model's code
    os._exit(0)  # the parts are written; an atexit handler of the model's code cannot undo that

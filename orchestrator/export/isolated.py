"""A registered package's model, lowered in a confined child process, never in the exporter worker.

An ``import:`` source is code from outside benchfarm. Its factory, and the lowering of what it
returns, run in a child forked from this process's *zygote* (:mod:`orchestrator.export.zygote`),
a clean interpreter started with a scrubbed environment that has imported the export stack once.
The child

- sees only the environment the export needs (:func:`child_env`: PATH, HOME, TMPDIR, locale,
  Python, torch/OpenMP/ExecuTorch settings, the registered packages) and none of the worker's
  descriptors (Redis, database sockets), so no token, password or store URL is in reach;
- has an address-space limit (``BENCHFARM_EXPORT_MEMORY_MB``, default 8192; 0 = none) and a
  wall-clock limit (``BENCHFARM_EXPORT_TIMEOUT_S``, default 1800), after which its process
  group is killed;
- writes its parts into a private directory; the worker stores the artifact itself, atomically.

Whatever the child does — raise, ``sys.exit()``, ``os.abort()``, segfault, hang, allocate
without bound — :func:`lower` returns a :class:`Produced` or raises :class:`IsolatedExportFailed`
naming the source and what happened: a failed export with a reason, never a dead worker.

Zoo models are benchfarm's own code and stay in the worker (``pipeline.lower_torch_source``):
isolating them too would fork for every export of the suite and the farm for no trust gained.
This is confinement for robustness and secrets, not a security sandbox for hostile code: the
child can still read files the worker's user can read, and only the operator's registered
packages (``orchestrator.export.trust``) ever get here.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.export.request import ExportRequest

if TYPE_CHECKING:
    from orchestrator.export.pipeline import Produced

DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_MB = 8192
# the zygote's imports (torch, executorch) before its first fork; not the model's time
START_TIMEOUT_S = 300.0
# what the export needs from the worker's environment; everything else (tokens, DATABASE_URL,
# REDIS_URL, AWS_*, BENCHFARM_* but the package list) stays behind
_KEEP = re.compile(r"^(PATH|HOME|TMPDIR|TEMP|TMP|LANG|LANGUAGE|TZ|USER|LOGNAME|LC_\w+|PYTHON\w*|VIRTUAL_ENV"
                   r"|LD_LIBRARY_PATH|OMP_\w+|MKL_\w+|KMP_\w+|OPENBLAS_\w+|GOMP_\w+|TORCH\w*|PYTORCH_\w+"
                   r"|TORCHINDUCTOR_\w+|EXECUTORCH_\w+|XDG_CACHE_HOME|BENCHFARM_MODEL_PACKAGES)$")
# ...and even a kept prefix loses a name that looks like a credential (TORCH_HUB_TOKEN, ...)
_SECRET = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|AUTH|COOKIE", re.I)


class IsolatedExportFailed(RuntimeError):
    """The child lowering a registered package's model failed; the message says how."""


def timeout_s() -> float:
    return float(os.environ.get("BENCHFARM_EXPORT_TIMEOUT_S") or DEFAULT_TIMEOUT_S)


def memory_mb() -> int:
    value = os.environ.get("BENCHFARM_EXPORT_MEMORY_MB")
    return DEFAULT_MEMORY_MB if value is None or value == "" else int(value)


def child_env(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if _KEEP.match(k) and not _SECRET.search(k)}


class _Zygote:
    """The worker's end of one zygote: requests out, ``pid``/``exitcode`` answers routed by id."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        boot = ("import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
                "from orchestrator.export.zygote import main; main(int(sys.argv[1]))")
        self.proc = subprocess.Popen([sys.executable, "-c", boot, str(theirs.fileno()), json.dumps(sys.path)],
                                     pass_fds=[theirs.fileno()], env=child_env(os.environ),
                                     stdin=subprocess.DEVNULL)
        theirs.close()
        self.owner = os.getpid()  # a forked worker process (Celery prefork) must start its own
        self.sock = ours
        self.gone = False
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self.waiting: dict[int, queue.Queue[dict[str, Any]]] = {}
        threading.Thread(target=self._read, daemon=True, name="export-zygote").start()

    def _read(self) -> None:
        with self.sock.makefile("rb") as lines:
            for line in lines:
                msg = json.loads(line)
                if (q := self.waiting.get(msg.get("id"))) is not None:
                    q.put(msg)
        self.gone = True  # EOF: the zygote exited or was killed; its waiters learn it here
        for q in list(self.waiting.values()):
            q.put({"gone": True})

    def submit(self, request: dict[str, Any]) -> tuple[int, queue.Queue[dict[str, Any]]]:
        rid = next(self._ids)
        answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.waiting[rid] = answers
        with self._send_lock:
            self.sock.sendall((json.dumps({"id": rid, **request}) + "\n").encode())
        return rid, answers

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # the zygote's EOF: it kills its children and exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_lock = threading.Lock()
_current: _Zygote | None = None


def _zygote() -> _Zygote:
    """This process's zygote, started on the first isolated export (a worker that never exports
    an ``import:`` source never pays for one) and again if it died."""
    global _current
    with _lock:
        if _current is not None and _current.owner != os.getpid():
            _current = None  # inherited through a fork: the parent's, not ours to use or close
        if _current is None or _current.gone or _current.proc.poll() is not None:
            if _current is not None:
                _current.close()
            else:
                atexit.register(_close)
            _current = _Zygote()
        return _current


def prestart() -> None:
    """Start this process's zygote now, without waiting for its imports: an exporter worker with
    registered packages calls it at start, so the zygote's seconds of imports overlap the
    worker's own start and its first zoo exports instead of delaying the first ``import:`` export."""
    _zygote()


def _close() -> None:
    with _lock:
        if _current is not None and _current.owner == os.getpid():
            _current.close()


def _answer(answers: queue.Queue[dict[str, Any]], wait_s: float) -> dict[str, Any] | None:
    try:
        return answers.get(timeout=wait_s)
    except queue.Empty:
        return None


def lower(req: ExportRequest) -> Produced:
    """Export and lower ``req`` (an ``import:`` source) in a confined child; see the module doc."""
    from orchestrator.export.pipeline import Produced

    limit, mem = timeout_s(), memory_mb()
    out = Path(tempfile.mkdtemp(prefix="benchfarm-export-"))
    zygote = _zygote()
    try:
        rid, answers = zygote.submit({"request": asdict(req), "out": str(out), "env": child_env(os.environ),
                                      "path": list(sys.path), "memory_bytes": mem * 2**20})
        try:
            started = _answer(answers, START_TIMEOUT_S)
            if started is None or "pid" not in started:
                raise IsolatedExportFailed(f"{req.source}: the exporter's zygote process "
                                           f"{'did not start' if started is None else 'died'}; retry the export")
            end = _answer(answers, limit)
            if end is None:
                _kill(started["pid"])
                _answer(answers, 30)  # the zygote reaps it and answers; the parts are discarded
                raise IsolatedExportFailed(f"{req.source}: the export did not finish within {limit:.0f} s "
                                           "(BENCHFARM_EXPORT_TIMEOUT_S); its process was killed")
        finally:
            zygote.waiting.pop(rid, None)
        if "exitcode" not in end:
            raise IsolatedExportFailed(f"{req.source}: the exporter's zygote process died during the export")
        code = int(end["exitcode"])
        if code != 0 or not (out / "program.pte").exists():
            raise IsolatedExportFailed(_why(req, out, code, mem))
        info = json.loads((out / "info.json").read_text())
        golden = json.loads((out / "golden.json").read_text()) if (out / "golden.json").exists() else None
        etrecord = (out / "etrecord.bin").read_bytes() if (out / "etrecord.bin").exists() else None
        return Produced((out / "program.pte").read_bytes(), info, golden, etrecord)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the child leads its own group (setsid)
    except (ProcessLookupError, PermissionError):
        pass


def _why(req: ExportRequest, out: Path, code: int, mem: int) -> str:
    error = ""
    try:
        error = str(json.loads((out / "error.json").read_text())["error"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    memory = f"; its memory limit is {mem} MB (BENCHFARM_EXPORT_MEMORY_MB)" if mem else ""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"{req.source}: the export process was killed by {name}{memory}"
    if not error:
        return (f"{req.source}: the export process exited with status {code}" if code
                else f"{req.source}: the export process ended without writing a program")
    if "MemoryError" in error or "can't allocate memory" in error:
        return f"{req.source}: out of memory: {error}{memory}"
    if code != 1:  # sys.exit(N): the status is what the model's code asked for
        return f"{req.source}: {error}; the export process exited with status {code}"
    return f"{req.source}: {error}"

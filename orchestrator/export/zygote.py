"""The exporter's zygote: a clean process that forks one child per isolated export.

Started by :mod:`orchestrator.export.isolated` (``python -c ... main(FD)``) with a scrubbed
environment and no inherited descriptors but its control socket. It imports the export stack
(torch, executorch, the XNNPACK partitioner) once and never runs a tensor operation, so it has
no OpenMP/intra-op thread pool when it forks: forking the worker itself, after torch's threads
exist and while Celery's threads hold locks, can deadlock the child. A fork of a warm zygote
costs milliseconds; a fresh interpreter per export would pay the imports (seconds) every time.

Protocol, one JSON object per line on the control socket:
  worker -> zygote  {"id", "request", "out", "env", "path", "memory_bytes"}
  zygote -> worker  {"id", "pid"} once the child is forked, {"id", "exitcode"} when it is reaped
                    (``exitcode`` as ``multiprocessing`` reports it: negative = killed by that signal)
When the control socket closes (the worker exited or died) the zygote kills its children and exits.

The child writes ``program.pte``, ``info.json``, ``golden.json``, ``etrecord.bin`` (or
``error.json``) into ``out``, a directory the worker made for it; the worker stores the artifact
itself, atomically, so a child that dies half-way leaves nothing in the artifact store.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import socket
import sys
from pathlib import Path
from typing import Any

# imported before any fork: every child starts with these in memory (the seconds a fork saves)
# (measured: what a process's first lowering imported lazily, about half of a fresh child's extra time)
PRELOAD = ("torch", "torch.export._trace", "executorch.exir", "executorch.devtools.etrecord",
           "executorch.devtools.inspector", "executorch.extension.flat_tensor.serialize.serialize",
           "executorch.backends.xnnpack.partition.xnnpack_partitioner",
           "executorch.backends.xnnpack.quantizer.xnnpack_quantizer", "torchao.quantization.pt2e.quantize_pt2e",
           "orchestrator.export.pipeline", "orchestrator.export.golden", "orchestrator.export.analysis",
           "orchestrator.export.zoo")
_PR_SET_PDEATHSIG = 1


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # e.g. no XNNPACK in this executorch: the child reports the real error
            pass


def _send(sock: socket.socket, msg: dict[str, Any]) -> None:
    try:
        sock.sendall((json.dumps(msg) + "\n").encode())
    except OSError:  # the worker is gone: the control socket's EOF ends the loop
        pass


def main(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    _preload()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select(); reaping is below
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C to the worker's group: the worker decides
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    children: dict[int, int] = {}  # pid -> request id
    buf = b""
    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.fileobj is sock:
                data = sock.recv(1 << 16)
                if not data:
                    _shutdown(children)
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        try:
                            sel.close()
                            sock.close()
                            os.close(wake_r)
                            os.close(wake_w)
                            signal.set_wakeup_fd(-1)
                            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                            signal.signal(signal.SIGINT, signal.SIG_DFL)
                            _child(msg)
                        finally:
                            os._exit(70)  # _child never returns; this is for a failure setting it up
                    children[pid] = msg["id"]
                    _send(sock, {"id": msg["id"], "pid": pid})
            else:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
        _reap(children, sock)


def _reap(children: dict[int, int], sock: socket.socket) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        rid = children.pop(pid, None)
        if rid is not None:
            _send(sock, {"id": rid, "exitcode": os.waitstatus_to_exitcode(status)})


def _shutdown(children: dict[int, int]) -> None:
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _die_with_parent() -> None:
    """Linux: SIGKILL this child if the zygote dies (a hung model must not outlive its exporter)."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere the zygote's EOF handling (its own exit) is what ends the children
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _child(msg: dict[str, Any]) -> None:
    """In the forked child: confine, lower, write the parts to ``out``, ``os._exit``."""
    os.setsid()  # its own process group: a timeout kills whatever the model's code started too
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not write a core of the exporter
    if msg.get("memory_bytes"):
        limit = int(msg["memory_bytes"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.environ.clear()
    os.environ.update(msg["env"])
    sys.path[:] = msg["path"]
    out = Path(msg["out"])
    work = out / "cwd"
    work.mkdir()
    os.chdir(work)
    failure, code = _lower(msg["request"], out)
    if failure is not None:  # written after the except block: a MemoryError's frames are freed by now
        try:
            (out / "error.json").write_text(json.dumps({"error": failure[:4000]}))
        except BaseException:
            pass
    os._exit(code)  # no atexit handler of the model's code runs, nothing is flushed twice


def _lower(request: dict[str, Any], out: Path) -> tuple[str | None, int]:
    try:
        from orchestrator.export.pipeline import lower_torch_source
        from orchestrator.export.registry import registry
        from orchestrator.export.request import ExportRequest

        req = ExportRequest(**request)
        produced = lower_torch_source(req, registry().resolve(req.backend))
        (out / "info.json").write_text(json.dumps(produced.info))
        if produced.golden is not None:
            (out / "golden.json").write_text(json.dumps(produced.golden))
        if produced.etrecord:
            (out / "etrecord.bin").write_bytes(produced.etrecord)
        (out / "program.pte").write_bytes(produced.program)  # last: its presence means the rest is there
        return None, 0
    except SystemExit as exc:  # sys.exit() in the model's code: report it as the exit it asked for
        status = exc.code if isinstance(exc.code, int) and exc.code != 0 else 1
        return f"the model's code called sys.exit({exc.code!r})", status
    except BaseException as exc:  # KeyboardInterrupt, MemoryError, anything the model raises
        text = str(exc)
        return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__), 1

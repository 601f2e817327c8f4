"""A real uvicorn API process and a raw-socket HTTP client that streams a large body while
watching for the answer, so a test sees *when* the server answered: after how many body
bytes, and what the server's resident memory did meanwhile. Shared with bench/api_body_guard.py."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.conftest import free_port, stop_process, wait_until

API = "import typer; from orchestrator.cli.service import api_command; typer.run(api_command)"
CHUNK = 256 * 1024


@dataclass
class Answer:
    status: int
    body: bytes
    sent: int  # body bytes the client had sent when the answer arrived (or the server hung up)
    peak_rss: int  # the server's largest resident set seen while the request was in flight


@contextmanager
def api_process(env: dict[str, str], log: Path) -> Iterator[tuple[int, psutil.Process]]:
    """``benchfarm api`` on a free port; yields (port, the server's process)."""
    port = free_port()
    with open(log, "wb") as out:
        # cwd away from any checkout: "python -c" puts the cwd first on sys.path, before PYTHONPATH
        proc = subprocess.Popen([sys.executable, "-c", API, "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=log.parent)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 90, "the API to answer")
        yield port, psutil.Process(proc.pid)
    finally:
        stop_process(proc, 20)


def _parse(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def push(port: int, path: str, total: int, server: psutil.Process, headers: dict[str, str] | None = None,
         chunked: bool = False, payload: bytes | None = None) -> Answer:
    """POST ``total`` body bytes (``payload`` itself when given, else one JSON document
    ``{"spec": "xxx..."}`` of that size) and stop sending as soon as the server answers or hangs up."""
    hdrs = {"Host": "127.0.0.1", "Content-Type": "application/json", **(headers or {})}
    hdrs["Transfer-Encoding" if chunked else "Content-Length"] = "chunked" if chunked else str(total)
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    head_json, tail_json, filler = b'{"spec": "', b'"}', b"x" * CHUNK
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(head.encode())
    sent, raw, peak = 0, b"", server.memory_info().rss
    sock.setblocking(False)
    pending = b""
    try:
        while True:
            want_write = sent < total or pending
            readable, writable, _ = select.select([sock], [sock] if want_write else [], [], 60)
            peak = max(peak, server.memory_info().rss)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                raw += data
                if b"\r\n\r\n" in raw and _complete(raw):
                    break
                continue
            if not readable and not writable:
                raise TimeoutError(f"no answer after {sent} body bytes")
            if not pending:
                n = min(CHUNK, total - sent)
                if payload is not None:
                    piece = payload[sent:sent + n]
                else:  # filler, with the document's first and last bytes where they fall
                    piece = bytearray(filler[:n])
                    if sent == 0:
                        piece[:len(head_json)] = head_json
                    if sent + n == total:
                        piece[n - len(tail_json):] = tail_json
                    piece = bytes(piece)
                sent += n
                pending = (f"{n:x}\r\n".encode() + piece + b"\r\n" + (b"0\r\n\r\n" if sent >= total else b"")
                           if chunked else piece)
            try:
                k = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                sock.setblocking(True)
                raw += _drain(sock)
                break
            pending = pending[k:]
    finally:
        sock.close()
    status, body = _parse(raw)
    return Answer(status, body, sent, max(peak, server.memory_info().rss))


def _complete(raw: bytes) -> bool:
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _drain(sock: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except OSError:
        pass
    return out


def server_env(env: dict[str, str]) -> dict[str, str]:
    """The test's environment for the server process (this checkout first on the path)."""
    root = str(Path(__file__).resolve().parents[2])
    return {**env, "PYTHONPATH": os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

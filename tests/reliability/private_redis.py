"""A private redis-server for the scenarios that restart Redis: never the shared one.
Append-only persistence, as in production, so a restart keeps queues and leases."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

BINARY = "/usr/bin/redis-server"


class PrivateRedis:
    def __init__(self, workdir: Path, bind: tuple[str, ...] = ("127.0.0.1",)):
        """``bind``: the addresses to listen on (the first is the one in ``url``); the
        network-partition scenario adds a veth address that another namespace reaches."""
        self.binary = shutil.which("redis-server") or BINARY
        if not Path(self.binary).exists():
            pytest.skip(f"no redis-server binary ({BINARY}) for the Redis-restart scenario")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.bind = bind
        self.url = f"redis://{bind[0]}:{self.port}/0"

    def url_for(self, address: str) -> str:
        return f"redis://{address}:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            # protected mode off: it would refuse the non-loopback clients of an explicit bind
            [self.binary, "--port", str(self.port), "--bind", *self.bind, "--protected-mode", "no",
             "--dir", str(self.dir), "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"private redis-server on port {self.port} did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis flushes the append-only file and exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

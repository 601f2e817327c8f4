"""A small SSH session to one inventory host: verified host key, timeouts, clear errors.

Host keys are checked against one ``known_hosts`` file with paramiko's RejectPolicy: an
unknown or changed key is a refusal that names the offered key's SHA256 fingerprint and the
command that accepts it. Nothing is ever added to ``known_hosts`` automatically, because
trust-on-first-use from a script is exactly how a man in the middle gets trusted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import posixpath
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

import paramiko
import tenacity

from orchestrator.fleetops.errors import (
    AuthFailed,
    CommandFailed,
    CommandTimeout,
    FleetOpsError,
    HostKeyMismatch,
    SSHTimeout,
    UnknownHostKey,
    Unreachable,
)
from orchestrator.fleetops.inventory import Host

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0  # TCP connect and SSH banner
    auth: float = 15.0
    command: float = 300.0
    retries: int = 2  # extra connection attempts for transient failures only
    backoff: float = 0.5


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint, the one ``ssh-keygen -lf`` prints."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def keyscan_command(host: Host, known_hosts: str) -> str:
    port = f"-p {host.port} " if host.port != 22 else ""
    return f"ssh-keyscan {port}{shlex.quote(host.hostname)} >> {shlex.quote(known_hosts)}"


class _RecordingReject(paramiko.RejectPolicy):
    """RejectPolicy that remembers the refused key, so the error can show its fingerprint."""

    offered: paramiko.PKey | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> NoReturn:
        self.offered = key
        super().missing_host_key(client, hostname, key)


class Remote:
    """A connected SSH session to one host. Use as a context manager."""

    def __init__(self, host: Host, known_hosts: str, timeouts: Timeouts | None = None):
        self.host = host
        self.known_hosts = str(Path(known_hosts).expanduser())
        self.timeouts = timeouts or Timeouts()
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._home: str | None = None

    # -- connection ----------------------------------------------------------------
    def connect(self) -> Remote:
        def note(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info("%s: %s; retry %d/%d", self.host.name, getattr(exc, "kind", exc), state.attempt_number,
                     self.timeouts.retries)

        # transient failures only, with a growing pause (backoff, 2 x backoff, ...)
        self._client = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, FleetOpsError) and e.retryable),
            stop=tenacity.stop_after_attempt(self.timeouts.retries + 1),
            wait=tenacity.wait_incrementing(start=self.timeouts.backoff, increment=self.timeouts.backoff),
            before_sleep=note, reraise=True)(self._connect_once)
        return self

    def _connect_once(self) -> paramiko.SSHClient:
        h, t = self.host, self.timeouts
        client = paramiko.SSHClient()
        if os.path.exists(self.known_hosts):
            client.load_host_keys(self.known_hosts)
        policy = _RecordingReject()
        client.set_missing_host_key_policy(policy)
        passphrase = os.environ.get(h.passphrase_env) if h.passphrase_env else None
        started = time.monotonic()
        try:
            client.connect(
                h.hostname, port=h.port, username=h.user, key_filename=h.key_file, passphrase=passphrase,
                timeout=t.connect, banner_timeout=t.connect, auth_timeout=t.auth, channel_timeout=t.connect,
                look_for_keys=False, allow_agent=h.key_file is None,
            )
            return client
        except BaseException as exc:
            client.close()
            raise self._translate(exc, policy, time.monotonic() - started) from None

    def _translate(self, exc: BaseException, policy: _RecordingReject, elapsed: float) -> BaseException:
        name = self.host.name
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyMismatch(name, (
                f"HOST KEY CHANGED for {self.host.address}: server offers {exc.key.get_name()} "
                f"{fingerprint(exc.key)}, {self.known_hosts} has {fingerprint(exc.expected_key)}. "
                "Refusing to connect. If the host was reinstalled, verify the new fingerprint "
                "out of band, then: "
                f"ssh-keygen -R {shlex.quote(self.host.address)} -f {shlex.quote(self.known_hosts)} && "
                f"{keyscan_command(self.host, self.known_hosts)}"))
        if policy.offered is not None:
            key = policy.offered
            return UnknownHostKey(name, (
                f"unknown host key for {self.host.address}: {key.get_name()} {fingerprint(key)} is not in "
                f"{self.known_hosts}. Refusing to connect. After checking the fingerprint on the host "
                f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), accept it with: "
                f"{keyscan_command(self.host, self.known_hosts)}"))
        if isinstance(exc, paramiko.PasswordRequiredException):
            env = self.host.passphrase_env or "..."
            return AuthFailed(name, f"key {self.host.key_file} is encrypted; set ${env} (passphrase_env) "
                                    "to its passphrase")
        if isinstance(exc, paramiko.AuthenticationException):
            return AuthFailed(name, f"authentication failed for user {self.host.user!r} "
                                    f"with key {self.host.key_file or '(ssh-agent)'}")
        if isinstance(exc, FileNotFoundError | IsADirectoryError):
            return AuthFailed(name, f"key file not readable: {exc.filename}")
        limit = self.timeouts.connect
        if isinstance(exc, socket.timeout | TimeoutError):
            return SSHTimeout(name, f"timed out after {limit:g}s connecting to {self.host.address}")
        # paramiko reports a silent peer as a banner error, or (its reader thread having
        # died) as "No existing session" once auth starts; elapsed time tells them apart
        # from a peer that hung up at once.
        if isinstance(exc, paramiko.SSHException) and not isinstance(exc, paramiko.AuthenticationException):
            if elapsed >= limit * 0.9:
                return SSHTimeout(name, f"{self.host.address} accepted TCP but sent no SSH banner "
                                        f"within {limit:g}s")
            if "banner" in str(exc) or "No existing session" in str(exc):
                return Unreachable(name, f"{self.host.address} hung up during the SSH handshake")
        if isinstance(exc, OSError):
            return Unreachable(name, f"cannot connect to {self.host.address}: {exc.strerror or exc}")
        if isinstance(exc, paramiko.SSHException):
            return FleetOpsError(name, f"SSH error: {exc}")
        return exc

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Remote:
        return self.connect() if self._client is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ------------------------------------------------------------------
    def command(self, argv: str | Sequence[str]) -> str:
        """The shell line for ``argv`` with the host's extra PATH entries in front."""
        line = argv if isinstance(argv, str) else shlex.join(argv)
        if self.host.env_path:
            extra = ":".join(shlex.quote(p) for p in self.host.env_path)
            line = f'PATH={extra}:"$PATH"; export PATH; {line}'
        return line

    def run(self, argv: str | Sequence[str], check: bool = True, timeout: float | None = None,
            stdin: bytes | None = None) -> Result:
        out, err = io.BytesIO(), io.BytesIO()
        code = self.stream(argv, out.write, err.write, timeout=timeout, stdin=stdin)
        result = Result(code, out.getvalue().decode(errors="replace"),
                        err.getvalue().decode(errors="replace"))
        if check and code != 0:
            shown = argv if isinstance(argv, str) else shlex.join(argv)
            raise CommandFailed(self.host.name, shown, code, result.stderr or result.stdout)
        return result

    def stream(self, argv: str | Sequence[str], on_stdout: Callable[[bytes], object],
               on_stderr: Callable[[bytes], object], timeout: float | None = None,
               stdin: bytes | None = None, stop: threading.Event | None = None) -> int:
        """Run a command, feeding output as it arrives; return its exit code (-1 if stopped)."""
        assert self._client is not None, "not connected"
        line = self.command(argv)
        log.debug("%s$ %s", self.host.name, line)
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise Unreachable(self.host.name, "SSH connection dropped")
        chan = transport.open_session(timeout=self.timeouts.connect)
        limit = self.timeouts.command if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            chan.exec_command(line)
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            while True:
                busy = False
                if chan.recv_ready():
                    on_stdout(chan.recv(65536))
                    busy = True
                if chan.recv_stderr_ready():
                    on_stderr(chan.recv_stderr(65536))
                    busy = True
                if not busy and chan.exit_status_ready() and chan.eof_received:
                    return chan.recv_exit_status()
                if stop is not None and stop.is_set():
                    return -1
                if time.monotonic() > deadline:
                    raise CommandTimeout(self.host.name, f"command still running after {limit:g}s: {line}")
                if not busy:
                    chan.status_event.wait(0.05)
        finally:
            chan.close()

    # -- files ---------------------------------------------------------------------
    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            assert self._client is not None, "not connected"
            self._sftp = self._client.open_sftp()
            channel = self._sftp.get_channel()
            if channel is not None:
                channel.settimeout(self.timeouts.command)
        return self._sftp

    @property
    def home(self) -> str:
        if self._home is None:
            self._home = self.sftp.normalize(".")
        return self._home

    def path(self, *parts: str) -> str:
        """A path under the host's base dir (``~`` is the login user's home)."""
        base = self.host.base_dir
        if base == "~" or base.startswith("~/"):
            base = self.home + base[1:]
        return posixpath.join(base, *parts)

    def makedirs(self, path: str) -> None:
        parts, current = path.strip("/").split("/"), "/" if path.startswith("/") else ""
        for part in parts:
            current = posixpath.join(current, part) if current else part
            try:
                self.sftp.stat(current)
            except FileNotFoundError:
                self.sftp.mkdir(current)

    def put_bytes(self, data: bytes, remote_path: str, mode: int = 0o644) -> None:
        self.put_stream(io.BytesIO(data), remote_path, mode)

    def put_stream(self, stream: IO[bytes], remote_path: str, mode: int = 0o644) -> None:
        """Upload atomically: a reader on the host sees the old file or the whole new one."""
        self.makedirs(posixpath.dirname(remote_path))
        tmp = f"{remote_path}.part-{os.getpid()}"
        try:
            self.sftp.putfo(stream, tmp)
            self.sftp.chmod(tmp, mode)
            self.sftp.posix_rename(tmp, remote_path)
        except BaseException:
            try:
                self.sftp.remove(tmp)
            except OSError:
                pass
            raise

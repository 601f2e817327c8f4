"""Errors of fleet operations: one class per thing an operator has to act on differently."""

from __future__ import annotations


class FleetOpsError(RuntimeError):
    """Base class; ``kind`` is a short stable word for tables and ``--json`` output."""

    kind = "error"
    # Transient failures (a host rebooting, a dropped SYN) are worth a bounded retry;
    # a wrong key or a refused host key never get better by retrying.
    retryable = False

    def __init__(self, host: str, message: str):
        self.host = host
        super().__init__(f"{host}: {message}")


class Unreachable(FleetOpsError):
    kind = "unreachable"
    retryable = True


class SSHTimeout(FleetOpsError):
    kind = "timeout"
    retryable = True


class UnknownHostKey(FleetOpsError):
    kind = "unknown-host-key"


class HostKeyMismatch(FleetOpsError):
    kind = "host-key-mismatch"


class AuthFailed(FleetOpsError):
    kind = "auth-failed"


class CommandFailed(FleetOpsError):
    """A remote command exited non-zero; carries the exit code and the tail of stderr."""

    kind = "command-failed"

    def __init__(self, host: str, command: str, exit_code: int, stderr: str):
        self.command = command
        self.exit_code = exit_code
        self.stderr_tail = tail(stderr)
        super().__init__(host, f"command failed with exit code {exit_code}: {command}\n{self.stderr_tail}")


class CommandTimeout(SSHTimeout):
    pass


def tail(text: str, lines: int = 15, chars: int = 2000) -> str:
    """The end of a command's output: where the actual error message is."""
    return "\n".join(text.rstrip().splitlines()[-lines:])[-chars:]

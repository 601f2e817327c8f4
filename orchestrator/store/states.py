"""Job, attempt and run states and the transitions allowed between them (one place)."""

from __future__ import annotations

JOB_STATES = ("queued", "exporting", "waiting-for-device", "running", "succeeded", "failed",
              "cancelled", "blocked")
JOB_TERMINAL = frozenset({"succeeded", "failed", "cancelled", "blocked"})
# the complement, for queries: ``state IN (open)`` uses an index where ``NOT IN`` cannot
JOB_OPEN = frozenset(JOB_STATES) - JOB_TERMINAL

_JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"exporting", "waiting-for-device", "blocked", "failed", "cancelled"}),
    "exporting": frozenset({"waiting-for-device", "blocked", "failed", "cancelled"}),
    # running -> waiting-for-device: an infrastructure failure sends the job back for a retry
    "waiting-for-device": frozenset({"running", "succeeded", "failed", "cancelled", "waiting-for-device"}),
    "running": frozenset({"succeeded", "failed", "cancelled", "waiting-for-device"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "blocked": frozenset(),
}

ATTEMPT_STATES = ("dispatched", "running", "succeeded", "infra_failed", "model_failed", "fenced", "cancelled")
ATTEMPT_OPEN = frozenset({"dispatched", "running"})

RUN_STATES = ("running", "succeeded", "partial", "failed", "cancelled")


class InvalidTransition(ValueError):
    pass


def check_job_transition(current: str, new: str) -> None:
    if new not in _JOB_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"job cannot go from {current!r} to {new!r}")


def run_status(job_states: list[str], cancelled: bool = False) -> str:
    """The final status of a run whose jobs are all terminal."""
    if cancelled:
        return "cancelled"
    ok = sum(1 for s in job_states if s == "succeeded")
    if ok == len(job_states):
        return "succeeded"
    return "partial" if ok else "failed"

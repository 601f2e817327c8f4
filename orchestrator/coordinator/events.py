"""Where higher layers hook into the coordinator without the coordinator importing them.

Dependencies point one way: the coordinator records results and finalises runs; PR
verification (``orchestrator.pr.hooks``) and webhooks consume what it publishes. Two kinds:

- *in-transaction hooks*, called with the open session while the coordinator works:
  ``on_submitted`` (a run's jobs exist, before its first dispatch) and ``on_jobs_done``
  (every job of a run is terminal; a hook that returns True keeps the run open, e.g. because
  it dispatched verify jobs);
- *events*, published after the commit (``publish``): every event goes to the webhook
  sender, then to each subscriber. A subscriber that raises is logged, never re-raised: a
  run is recorded whatever its consumers do.

The composition roots (``orchestrator.tasks``, the API app, the CLI, test fixtures) install
the hooks; :func:`installed` says which are in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestrator.observability.notify import notify

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from device_inventory.fleet import Fleet
    from orchestrator.coordinator.outbox import Outbox
    from orchestrator.export.artifacts import ArtifactStore
    from orchestrator.spec.matrix import MatrixSpec
    from orchestrator.store.models import Run

log = logging.getLogger("benchfarm.events")

SubmittedHook = Callable[["Session", "Run", "MatrixSpec", "ArtifactStore"], None]
JobsDoneHook = Callable[["Session", "Run", "Fleet", "Outbox"], bool]
Subscriber = Callable[[str, dict[str, Any]], None]

_submitted: dict[str, SubmittedHook] = {}
_jobs_done: dict[str, JobsDoneHook] = {}
_subscribers: dict[str, Subscriber] = {}


def on_submitted(name: str, hook: SubmittedHook) -> None:
    _submitted[name] = hook  # by name: installing twice replaces, never doubles


def on_jobs_done(name: str, hook: JobsDoneHook) -> None:
    _jobs_done[name] = hook


def subscribe(name: str, subscriber: Subscriber) -> None:
    _subscribers[name] = subscriber


def installed() -> list[str]:
    return sorted({*_submitted, *_jobs_done, *_subscribers})


def submitted(s: Session, run: Run, spec: MatrixSpec, store: ArtifactStore) -> None:
    for hook in _submitted.values():
        hook(s, run, spec, store)


def jobs_done(s: Session, run: Run, fleet: Fleet, outbox: Outbox) -> bool:
    """True when a hook keeps the run open (it has more work for it)."""
    return any([hook(s, run, fleet, outbox) for hook in _jobs_done.values()])


def publish(event: str, payload: dict[str, Any]) -> None:
    notify(event, payload)
    for name, subscriber in _subscribers.items():
        try:
            subscriber(event, payload)
        except Exception:  # a consumer's failure must not undo or repeat what was recorded
            log.warning("event %s: subscriber %s failed", event, name, exc_info=True)

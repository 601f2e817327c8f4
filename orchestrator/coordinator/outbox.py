"""Messages and events leave the coordinator only after the commit, and survive its death.

Messages are never sent inside a database transaction: domain functions append them to an
:class:`Outbox` and the caller sends it after the commit, so a worker can never receive
an id whose row is not visible yet. :meth:`Outbox.stage` also writes them into the
transaction itself (the ``outbox`` table): a process that dies between its commit and its
send — a submitter killed, a broker unreachable — leaves them there, and the reconciler
(``coordinator.reconcile``) sends them. Sending twice is harmless: a run_job message is
claimed once (``attempt:<id>``), an export answer finds its jobs once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from orchestrator import celery_app as capp
from orchestrator.coordinator import events


def new_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Message:
    task: str
    args: list[Any]
    queue: str
    priority: int = 5
    countdown: float = 0


@dataclass
class Outbox:
    messages: list[Message] = field(default_factory=list)
    # events (name, payload), delivered after the commit like the messages: webhooks and consumers
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # ids of the outbox rows holding these messages until they are sent
    staged: list[str] = field(default_factory=list)
    _marks: tuple[int, int] = (0, 0)  # messages, events already staged (one outbox may span sessions)

    def stage(self, s: Session) -> None:
        """Write what was added since the last stage into ``s``'s transaction (call it last,
        just before the commit)."""
        from orchestrator.store.models import OutboxBatch, utcnow

        messages, evts = self.messages[self._marks[0]:], self.events[self._marks[1]:]
        self._marks = (len(self.messages), len(self.events))
        if not messages and not evts:
            return
        try:
            kept = json.loads(json.dumps([[name, payload] for name, payload in evts]))
        except (TypeError, ValueError):  # an event only a live process can deliver: never fail the commit
            kept = []
        row = OutboxBatch(id=new_id(), created_at=utcnow(), messages=[asdict(m) for m in messages], events=kept)
        s.add(row)
        self.staged.append(row.id)

    @classmethod
    def from_row(cls, row: Any) -> Outbox:
        return cls([Message(**m) for m in row.messages], [(e[0], e[1]) for e in row.events], [row.id])

    def send(self, app: Any = None) -> None:
        app = app or capp.app
        for m in self.messages:
            app.send_task(m.task, args=m.args, queue=m.queue, priority=m.priority,
                          countdown=m.countdown or None, argsrepr=capp.args_summary(m.args))
        self.messages.clear()
        for event, payload in self.events:
            events.publish(event, payload)
        self.events.clear()
        self._marks = (0, 0)
        if self.staged:  # sent: the durable copy has done its job
            from orchestrator.store.db import session as db_session
            from orchestrator.store.models import OutboxBatch

            with db_session() as s:
                s.execute(delete(OutboxBatch).where(OutboxBatch.id.in_(self.staged)))
            self.staged.clear()

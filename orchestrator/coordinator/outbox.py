"""Messages and events leave the coordinator only after the commit.

Messages are never sent inside a database transaction: domain functions append them to an
:class:`Outbox` and the caller sends it after the commit, so a worker can never receive
an id whose row is not visible yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

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

    def send(self, app: Any = None) -> None:
        app = app or capp.app
        for m in self.messages:
            app.send_task(m.task, args=m.args, queue=m.queue, priority=m.priority,
                          countdown=m.countdown or None)
        self.messages.clear()
        for event, payload in self.events:
            events.publish(event, payload)
        self.events.clear()

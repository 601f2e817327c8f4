"""The audit trail: one row per write, added to the write's own session (same transaction).

Callers pass an :class:`Actor` (who) and say what (``action``) to which run or token. The
``detail`` mapping is checked here: small, JSON, and never a field that could hold a secret,
so a careless caller cannot put a token into the trail.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.store.models import AuditEvent

ACTIONS = ("run.submit", "run.cancel", "token.create", "token.revoke")
DETAIL_MAX_BYTES = 2000  # counts and names, not documents: a spec is on its run, not here
_SECRET_WORDS = ("secret", "token", "password", "salt", "sha256")


@dataclass(frozen=True)
class Actor:
    """Who acts: a token's principal (``token_id`` set) or a person at the coordinator's CLI."""

    principal: str
    token_id: str = ""
    scopes: frozenset[str] = field(default_factory=frozenset)
    max_cells: int | None = None  # the token's cell quota (None: none)

    @classmethod
    def cli(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers): still say it was the CLI
            user = "unknown"
        return cls(principal=f"cli:{user}")


def record(s: Session, actor: Actor, action: str, *, run_id: str | None = None,
           target_token_id: str | None = None, **detail: Any) -> AuditEvent:
    """Add the audit row for a write to ``s``; it commits (or rolls back) with the write."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r} (known: {', '.join(ACTIONS)})")
    bad = [k for k in detail if any(w in k.lower() for w in _SECRET_WORDS)]
    if bad:
        raise ValueError(f"audit detail may not carry {bad} (secrets never enter the trail)")
    if len(json.dumps(detail, default=str)) > DETAIL_MAX_BYTES:
        raise ValueError(f"audit detail over {DETAIL_MAX_BYTES} bytes")
    row = AuditEvent(actor=actor.principal, token_id=actor.token_id, action=action, run_id=run_id,
                     target_token_id=target_token_id, detail=detail)
    s.add(row)
    return row


def query(s: Session, *, actor: str | None = None, action: str | None = None, run_id: str | None = None,
          since: datetime | None = None, limit: int = 100) -> list[AuditEvent]:
    """Newest first, filtered."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if actor:
        q = q.where(AuditEvent.actor == actor)
    if action:
        q = q.where(AuditEvent.action == action)
    if run_id:
        q = q.where(AuditEvent.run_id == run_id)
    if since:
        q = q.where(AuditEvent.at >= since)
    return list(s.scalars(q))


def as_dict(e: AuditEvent) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "token_id": e.token_id, "action": e.action,
            "run_id": e.run_id, "target_token_id": e.target_token_id, "detail": e.detail or {}}

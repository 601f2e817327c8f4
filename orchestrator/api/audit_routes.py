"""``GET /audit``: the trail of writes (who, what, when, which run or token); ``admin`` only."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator
from sqlalchemy.orm import Session

from orchestrator.api.auth import require
from orchestrator.api.deps import get_session
from orchestrator.api.errors import responses
from orchestrator.api.guard import GuardedRoute
from orchestrator.store import audit
from orchestrator.store.audit import Actor


def _iso_only(value: object) -> object:
    """An ISO 8601 time, as the schema says; pydantic alone would take "0.5" as a Unix time."""
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("an ISO 8601 date-time, e.g. 2026-12-01T00:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]
router = APIRouter(tags=["audit"], route_class=GuardedRoute)


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    token_id: str
    action: str
    run_id: str | None
    target_token_id: str | None
    detail: dict[str, Any]


@router.get("/audit", response_model=list[AuditEntry], responses=responses(400, 401, 403, 413, 422))
def audit_trail(limit: int = Query(100, ge=1, le=1000), actor: str | None = Query(None, max_length=200),
                action: Literal["run.submit", "run.cancel", "token.create", "token.revoke"] | None = None,
                run_id: str | None = Query(None, max_length=32), since: IsoTime | None = None,
                _admin: Actor = Depends(require("admin")), s: Session = Depends(get_session)) -> list[dict[str, Any]]:
    """Newest first; filter by actor (a principal or ``cli:USER``), action, run, time."""
    if since is not None and since.tzinfo is not None:  # stored as naive UTC
        since = since.astimezone(UTC).replace(tzinfo=None)
    return [audit.as_dict(e) for e in audit.query(s, actor=actor, action=action, run_id=run_id, since=since,
                                                  limit=limit)]

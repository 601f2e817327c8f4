"""Per-request resources shared by the routes: a database session and the fleet."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from fastapi import HTTPException, Request
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator.store import db


def get_session() -> Iterator[Session]:
    """One unit of work per request (commit on success, rollback on error)."""
    with db.session() as s:
        yield s


def get_fleet(request: Request) -> Fleet:
    """The fleet (Redis); 503 when Redis does not answer, so nothing is half-submitted."""
    fleet: Fleet = request.app.state.fleet
    try:
        fleet.ping()
    except redis.RedisError as exc:
        raise HTTPException(503, f"Redis does not answer ({type(exc).__name__}); the coordinator "
                                 "cannot queue or cancel work right now") from None
    return fleet

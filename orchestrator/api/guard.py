"""The API's front door: authenticate before the body is read, and bound every body.

FastAPI reads and parses a request's body *before* it resolves dependencies, so a token check
written only as a dependency ran after a 300 MB body had been read and parsed. Two parts fix it:

- :class:`GuardedRoute` (every router's ``route_class``) finds the scope its route declares
  (``Depends(auth.require(SCOPE))``) and answers 401/403 from the headers, before the route's
  handler reads a byte of the body. The verdict is left in the request's state, so the
  dependency does not look the token up again.
- :class:`BodyLimit` (ASGI middleware) bounds every body: a Content-Length over the path's
  limit is a 413 on the first read, before any body byte is taken; a chunked body is counted
  while it streams, 413 as soon as it passes the limit. It raises on the *first read*, not on
  arrival, so an unauthenticated request is answered 401, not 413.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.api import auth
from orchestrator.store.audit import Actor

# a spec is at most 1 MB of text (RunRequest.spec); JSON escaping can grow it a few times
DEFAULT_MAX_BODY_BYTES = 8 * 1024**2


def max_body_bytes() -> int:
    return int(os.environ.get("BENCHFARM_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def required_scope(dependant: Dependant) -> str | None:
    """The scope a route's dependencies require (the guard and the route agree by construction)."""
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        scope = getattr(dep.call, "required_scope", None)
        if scope:
            return str(scope)
        stack.extend(dep.dependencies)
    return None


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        scope = required_scope(self.dependant)
        if scope is None:
            return handler

        async def guarded(request: Request) -> Response:
            token = auth.bearer_value(request.headers.get("authorization"))
            got = await run_in_threadpool(auth.decide, token, scope)  # one primary-key lookup
            if not isinstance(got, Actor):
                status, why = got
                return JSONResponse({"detail": why}, status_code=status,
                                    headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
            request.scope.setdefault("state", {})[auth.ACTOR_KEY] = got
            return await handler(request)

        return guarded


def too_large(limit: int) -> str:
    return f"request body larger than the {limit}-byte limit of this endpoint"


class BodyLimit:
    """``limits``: path -> body limit in bytes (other paths get ``default_limit``)."""

    def __init__(self, app: ASGIApp, default_limit: int, limits: dict[str, int] | None = None):
        self.app, self.default_limit, self.limits = app, default_limit, limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_limit)
        length = dict(scope["headers"]).get(b"content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            if declared is not None and declared > limit:
                raise HTTPException(413, too_large(limit))  # refused before a body byte is taken
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                # FastAPI's body reading passes an HTTPException through unchanged -> this 413
                raise HTTPException(413, too_large(limit))
            return message

        await self.app(scope, counting_receive, send)

"""Error replies: one documented shape, bounded, and never an echo of the request.

FastAPI's default 422 lists every validation error with its ``input``: a rejected 50 MB
body came back whole in the reply. Here a 422 gives each error's location and message only,
at most :data:`MAX_ERRORS` of them, each part cut to a few hundred characters. The models
below are the OpenAPI schema of every error reply, so the document tells the truth.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.routing import compile_path

from orchestrator.api.submit import QuotaExceeded
from orchestrator.export.sources import BadSource
from orchestrator.spec.yamlpos import SpecError

MAX_ERRORS = 20
MAX_TEXT = 300  # characters of one message, one location part


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where: body/query/path, then field names and indexes")
    msg: str
    type: str


class ErrorReply(BaseModel):
    """Every 4xx/5xx body: ``detail`` is a message, or (request validation) a list of field errors."""

    detail: str | list[FieldError]
    problems: list[str] | None = Field(default=None, description="a spec's problems, one per line")
    more: int | None = Field(default=None, description="errors left out of the reply")


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


def _loc(part: Any) -> str | int:
    return part if isinstance(part, int) and not isinstance(part, bool) else _cut(str(part))


def field_errors(errors: Any) -> tuple[list[dict[str, Any]], int]:
    """Location, message and type of the first errors (never ``input`` or ``ctx``); how many more."""
    out: list[dict[str, Any]] = []
    count = 0
    for err in errors:
        count += 1
        if len(out) < MAX_ERRORS:
            out.append({"loc": [_loc(p) for p in err.get("loc", ())][:20], "msg": _cut(str(err.get("msg", ""))),
                        "type": _cut(str(err.get("type", "")))})
    return out, count - len(out)


def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors, more = field_errors(exc.errors())
    return JSONResponse({"detail": errors, **({"more": more} if more else {})}, status_code=422)


def _spec_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpecError)
    problems = [_cut(p) for p in exc.problems[:MAX_ERRORS]]
    more = len(exc.problems) - len(problems)
    return JSONResponse({"detail": "\n".join(problems), "problems": problems, **({"more": more} if more else {})},
                        status_code=422)


def _quota(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _cut(str(exc))}, status_code=429, headers={"Retry-After": "60"})


def _bad_input(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _cut(str(exc))}, status_code=422)


def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 with ``Allow`` naming every method the path has (Starlette names only one route's)."""
    app = request.app
    matching = [(path, ops) for path, ops in app.openapi()["paths"].items()
                if compile_path(path)[0].match(request.url.path)]
    literal = [m for m in matching if "{" not in m[0]]  # "/runs/pte" is not a "/runs/{run_id}"
    methods = {m.upper() for _path, ops in (literal or matching) for m in ops}
    allow = ", ".join(sorted(methods)) or str(getattr(exc, "headers", {}).get("Allow", ""))
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": allow})


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(SpecError, _spec_error)
    app.add_exception_handler(BadSource, _bad_input)
    app.add_exception_handler(QuotaExceeded, _quota)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route's error codes, all with :class:`ErrorReply`."""
    why = {400: "malformed request", 401: "no bearer token", 403: "token unknown, revoked or lacking the scope",
           404: "no such resource", 413: "request body over the limit", 422: "invalid input (location + message)",
           429: "the token's cell quota is in use by its unfinished runs",
           500: "the store's copy is corrupt", 503: "Redis or the database does not answer"}
    return {c: {"model": ErrorReply, "description": why.get(c, "error")} for c in codes}

"""The FastAPI application: ``create_app()``; served by ``benchfarm api`` (uvicorn).

Routes: ``/runs`` (submit, list, get, matrix, cancel), ``/runs/pte`` (upload), ``/artifacts/{key}``
(agents on other hosts download programs; ``read`` token), ``/audit`` (``admin``), ``/devices``,
``/capacity``, ``/health``, ``/openapi.json`` + ``/docs``. Auth: see :mod:`orchestrator.api.auth`
(writes need a bearer token with their scope, checked by :mod:`orchestrator.api.guard` before
the body is read; run and fleet reads are open). Error replies: :mod:`orchestrator.api.errors`.
Optional parts — the ``/ui`` dashboard and the ``/metrics`` exposition — are mounted
when their modules import, so the API works whichever of them exist.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import text

from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.api import artifacts, audit_routes, errors, guard, profiles, runs, uploads
from orchestrator.pr import hooks
from orchestrator.store import db

log = logging.getLogger("benchfarm.api")


def _optional_parts(app: FastAPI) -> None:
    """Mount the dashboard and the metrics exposition when their owners have shipped them."""
    try:
        from orchestrator.reports.ui import router as ui_router
    except ImportError as exc:
        log.info("/ui dashboard not mounted: %s", exc)
    else:
        app.include_router(ui_router, include_in_schema=False)  # pages for a browser, not API operations
    try:
        from orchestrator.observability.metrics import asgi_app
    except ImportError as exc:
        log.info("/metrics not mounted: %s", exc)
    else:
        app.mount("/metrics", asgi_app())


def create_app(fleet: Fleet | None = None, max_upload_bytes: int | None = None) -> FastAPI:
    app = FastAPI(title="benchfarm", version="1",
                  description="Benchmark ExecuTorch programs on a farm of iPhones/iPads. Write endpoints "
                              "need `Authorization: Bearer <token>` (`benchfarm tokens create NAME --scope ...`) "
                              "with their scope (read, submit, cancel-own, admin); run and fleet reads are open. "
                              "Every result and cell carries `simulated`.")
    hooks.install()  # a PR run submitted here is paired with its baselines
    app.state.fleet = fleet or Fleet.from_url(config.redis_url())
    app.state.max_upload_bytes = max_upload_bytes or uploads.max_upload_bytes()
    # every body is bounded; tokens are checked before the body is read (guard.GuardedRoute)
    app.add_middleware(guard.BodyLimit, default_limit=guard.max_body_bytes(),
                       limits=dict.fromkeys(("/runs/pte", "/programs"),
                                            app.state.max_upload_bytes + uploads.FORM_OVERHEAD_BYTES))
    errors.install(app)
    app.add_exception_handler(405, errors.method_not_allowed)
    app.include_router(uploads.router,  # before /runs/{run_id} routes: "/runs/pte" is a literal path
                       responses=errors.responses(400, 401, 403, 413, 422, 503))
    app.include_router(uploads.programs_router, responses=errors.responses(400, 401, 403, 413, 422))
    app.include_router(profiles.router, responses=errors.responses(404, 422))  # before /runs/{run_id}
    app.include_router(runs.router)
    app.include_router(artifacts.router, responses=errors.responses(401, 403, 404, 422, 500))
    app.include_router(audit_routes.router)

    @app.get("/devices", tags=["fleet"], responses=errors.responses(503))
    def devices(request: Request) -> list[dict[str, Any]]:
        """Every registered device with its state; ``simulated`` is a boolean."""
        try:
            rows = request.app.state.fleet.devices()
        except redis.RedisError as exc:
            raise HTTPException(503, f"Redis does not answer ({type(exc).__name__})") from None
        return [dict(d, simulated=str(d.get("simulated", "")).lower() in ("1", "true")) for d in rows]

    @app.get("/capacity", tags=["fleet"], responses=errors.responses(422, 503))
    def capacity(window_s: float = Query(7 * 86400, gt=0, le=366 * 86400, description="window, s (<= 1 year)"),
                 device_class: str | None = None) -> Any:
        """Utilisation, queue wait and backlog per device class (``orchestrator.capacity``)."""
        try:
            from orchestrator.capacity.report import capacity_report
        except ImportError:
            raise HTTPException(503, "capacity reporting is not installed yet "
                                     "(orchestrator.capacity.report.capacity_report is missing)") from None
        try:
            return jsonable_encoder(capacity_report(window_s, device_class))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/health", tags=["meta"])
    def health(request: Request) -> JSONResponse:
        """Redis and database reachability; 503 when either is down."""
        checks: dict[str, str] = {}
        try:
            request.app.state.fleet.ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
        try:
            with db.session() as s:
                s.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means "not reachable" here
            checks["database"] = f"down: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)

    _optional_parts(app)
    return app


"""The dashboard at ``/ui``: latest matrix per device class, recent runs, devices and
their states, and a capacity section (placeholder until capacity reporting lands).

Server-rendered HTML, no scripts: it works offline and in any browser. Redis being
down degrades the devices section to a notice; it never breaks the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from html import escape

import redis
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.reports.build import analyse_run, build_report
from orchestrator.reports.data import RunNotFound, latest_run_per_class, load_run, recent_runs
from orchestrator.reports.html import CSS, report_html, table_html
from orchestrator.reports.tables import SIMULATED, device_tables
from orchestrator.store import db

router = APIRouter(prefix="/ui", tags=["dashboard"])
RUNS_SHOWN = 25


def get_session() -> Iterator[Session]:
    """One unit of work per request (``orchestrator.store.db.session``)."""
    with db.session() as s:
        yield s


def _page(title: str, body: str) -> HTMLResponse:
    nav = '<p><a href="/ui">Dashboard</a></p>'
    return HTMLResponse(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
                        f"</title><style>{CSS}</style></head><body>{nav}{body}</body></html>")


def _matrix_section(s: Session) -> str:
    latest = latest_run_per_class(s)
    if not latest:
        return "<p>No runs yet.</p>"
    out, loaded = [], {}
    for run_id in dict.fromkeys(latest.values()):
        loaded[run_id] = device_tables(analyse_run(load_run(s, run_id)))
    for cls, run_id in latest.items():
        for t in loaded[run_id]:
            if t.id == f"device-{cls.lower()}":
                out.append(f'<section class="matrix" data-class="{escape(cls)}">{table_html(t)}'
                           f'<p class="note">from run <a href="/ui/runs/{escape(run_id)}">{escape(run_id)}</a>'
                           "</p></section>")
    return "".join(out)


def _runs_section(s: Session) -> str:
    rows = "".join(
        f'<tr><td><a href="/ui/runs/{escape(r.id)}">{escape(r.id)}</a></td><td>{escape(r.name)}</td>'
        f"<td>{escape(r.trigger)}</td><td>{escape(r.status)}</td><td>{r.created_at:%Y-%m-%d %H:%M}</td></tr>"
        for r in recent_runs(s, RUNS_SHOWN))
    return ('<table id="runs"><thead><tr><th>Run</th><th>Name</th><th>Trigger</th><th>Status</th>'
            f"<th>Created (UTC)</th></tr></thead><tbody>{rows}</tbody></table>")


def _devices_section() -> str:
    try:
        devices = Fleet.from_url(config.redis_url()).devices()
    except redis.RedisError as exc:
        return f'<p class="alert" id="devices-unavailable">Device states unavailable: Redis ({escape(str(exc))}).</p>'
    if not devices:
        return '<p id="devices-empty">No devices registered.</p>'
    rows = "".join(
        f'<tr class="device {escape(d.get("state", ""))}"><td>{escape(d["id"])}</td>'
        f'<td>{escape(d.get("device_class", ""))}</td><td>{escape(d.get("name", d.get("product_type", "")))}</td>'
        f'<td>{escape(d.get("os_version", ""))}</td><td>{escape(d.get("host", ""))}</td>'
        f'<td><b>{escape(d.get("state", "unknown"))}</b> {escape(d.get("state_reason", ""))}</td>'
        + (f'<td><span class="badge sim">{SIMULATED}</span></td>' if d.get("simulated") in ("1", "True", "true")
           else "<td></td>") + "</tr>"
        for d in devices)
    return ('<table id="devices"><thead><tr><th>Device</th><th>Class</th><th>Model</th><th>OS</th><th>Host</th>'
            f"<th>State</th><th></th></tr></thead><tbody>{rows}</tbody></table>")


@router.get("", response_class=HTMLResponse)
def dashboard(s: Session = Depends(get_session)) -> HTMLResponse:
    body = ("<h1>benchfarm</h1><h2>Latest matrix per device class</h2>" + _matrix_section(s)
            + "<h2>Runs</h2>" + _runs_section(s) + "<h2>Devices</h2>" + _devices_section()
            + '<h2>Capacity</h2><p class="note" id="capacity">Capacity reporting (utilisation, queue wait, '
              "backlog drain time per device class) is not wired in yet.</p>")
    return _page("benchfarm dashboard", body)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_report(run_id: str, s: Session = Depends(get_session)) -> HTMLResponse:
    try:
        report = build_report(s, run_id)
    except RunNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return HTMLResponse(report_html(report))

"""``benchfarm doctor``: why a host or a device is not taking work, one line per check.

Each check is a small function from a :class:`Context` to findings; a finding is ``ok``,
``warn`` (works, but something is degraded or optional is missing), ``fail`` (something
this role needs is missing: exit status 1) or ``skip`` (nothing to check here), always with
a remedy when it is not ok. Checks for a new piece (a tunnel daemon, a device state) are one
more function in ``CHECKS`` (or in ``doctor_ios.DEVICE_CHECKS`` for a per-device one).

Roles: ``coordinator`` (Redis, database, Celery workers, exporters, agents and their devices),
``agent`` (Redis and this host's iOS devices over usbmuxd), ``all`` (both; the default).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import redis
import typer
from rich.markup import escape

from device_inventory.devices import CONDITION_STATES
from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.cli.common import console

# Redis streams (device events) need 5.0; 6.2 is the oldest release still maintained
REDIS_MIN, REDIS_MAINTAINED = (5, 0), (6, 2)
INSPECT_TIMEOUT_S = 2.0


class Role(StrEnum):
    all = "all"
    coordinator = "coordinator"
    agent = "agent"


@dataclass
class Finding:
    check: str
    status: str  # ok | warn | fail | skip
    detail: str
    remedy: str = ""


@dataclass
class Context:
    role: Role
    redis_url: str
    usbmux: str | None
    fleet: Fleet | None = None
    # filled by check_workers, read by the checks after it
    queues: dict[str, list[str]] = field(default_factory=dict)


Check = Callable[[Context], list[Finding]]


def check_redis(ctx: Context) -> list[Finding]:
    client = redis.Redis.from_url(ctx.redis_url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True)
    try:
        server, persistence = client.info("server"), client.info("persistence")
    except redis.RedisError as exc:
        return [Finding("redis", "fail", f"no answer at {ctx.redis_url} ({exc})",
                        "start one (redis-server, or apt-get install redis-server) or point REDIS_URL at it")]
    ctx.fleet = Fleet(client)
    version = str(server.get("redis_version", "?"))
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    out = [Finding("redis", "fail" if parts < REDIS_MIN else "warn" if parts < REDIS_MAINTAINED else "ok",
                   f"Redis {version} at {ctx.redis_url}",
                   "" if parts >= REDIS_MAINTAINED else f"upgrade to Redis {'.'.join(map(str, REDIS_MAINTAINED))}+")]
    try:
        saves = client.config_get("save").get("save", "")
    except redis.RedisError:  # CONFIG may be renamed away on a managed Redis
        saves = "?"
    aof = str(persistence.get("aof_enabled", "0")) == "1"
    if aof or saves not in ("", "?"):
        out.append(Finding("redis persistence", "ok", "append-only file" if aof else f"snapshots (save {saves})"))
    else:
        out.append(Finding("redis persistence", "warn",
                           "off: a Redis restart loses queued jobs and leases (the reaper re-queues them)",
                           "redis-server --appendonly yes (or CONFIG SET appendonly yes)"))
    return out


def check_database(ctx: Context) -> list[Finding]:
    from sqlalchemy import create_engine, inspect

    from orchestrator.store import migrations

    url = config.database_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return [Finding("database", "warn", f"no results store yet at {url}",
                        "created on first use: benchfarm db upgrade, benchfarm submit SPEC or benchfarm demo")]
    # a bare engine: store.db.engine would create the schema it is asked about, or refuse an old one
    eng = create_engine(url, connect_args={"timeout": 5} if url.startswith("sqlite") else {})
    try:
        with eng.connect() as conn:
            revision = migrations.current(conn)
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:  # any driver's connection error: report it, never crash the doctor
        return [Finding("database", "fail", f"{_safe_url(url)} unreachable: {type(exc).__name__}: {str(exc)[:200]}",
                        "start PostgreSQL / fix DATABASE_URL, or unset it for the SQLite default")]
    finally:
        eng.dispose()
    head = migrations.head()
    if revision is None and not tables:
        return [Finding("database", "warn", f"{_safe_url(url)}: empty", f"created at {head} on first use")]
    if revision != head:
        # every benchfarm process refuses a database not at head: nothing records results
        at = f"at revision {revision}" if revision else "made before schema migrations"
        return [Finding("database", "fail", f"{_safe_url(url)}: schema {at}, this benchfarm needs {head}",
                        "benchfarm db upgrade (back the database up first)")]
    return [Finding("database", "ok", f"{_safe_url(url)}: schema current ({head}, {len(tables)} tables)")]


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def check_workers(ctx: Context) -> list[Finding]:
    """Celery workers and the queues they consume; exporters also heartbeat per platform."""
    if ctx.fleet is None:
        return [Finding("workers", "skip", "Redis is down: no way to reach the workers")]
    from orchestrator.celery_app import COORDINATOR_QUEUE, app
    from orchestrator.export.registry import registry

    app.conf.broker_url = ctx.redis_url
    replies = app.control.inspect(timeout=INSPECT_TIMEOUT_S).active_queues() or {}
    ctx.queues = {w: [q["name"] for q in qs] for w, qs in replies.items()}
    consumers = {q for qs in ctx.queues.values() for q in qs}
    out = [Finding("coordinator worker", "ok" if COORDINATOR_QUEUE in consumers else "fail",
                   f"{sum(COORDINATOR_QUEUE in qs for qs in ctx.queues.values())} worker(s) on {COORDINATOR_QUEUE}",
                   "" if COORDINATOR_QUEUE in consumers else
                   "benchfarm worker --queues coordinator,export.linux (nothing records results without it)")]
    alive = ctx.fleet.exporters.alive() | {q.split(".", 1)[1] for q in consumers if q.startswith("export.")}
    backends = list(registry().backends.values())
    for platform in sorted({p for b in backends for p in b.exporters}):
        name = {"macos": "macOS", "linux": "Linux"}.get(platform, platform)
        waiting = ctx.fleet.r.llen(f"export.{platform}")
        if platform in alive:
            out.append(Finding(f"exporter {platform}", "ok", f"a live {name} exporter; {waiting} export(s) queued"))
            continue
        # what no live exporter can lower: those cells block (macOS) or wait in the queue (Linux,
        # which submit assumes is always there)
        stuck = ", ".join(b.display for b in backends if platform in b.exporters and not set(b.exporters) & alive)
        effect = f"{stuck} cells block" if platform != "linux" else f"exports of {stuck} wait ({waiting} queued)"
        out.append(Finding(f"exporter {platform}", "fail" if platform == "linux" else "warn",
                           f"no {name} exporter: {effect}", f"benchfarm worker --queues export.{platform}"
                           + (" on a Mac with ExecuTorch" if platform == "macos" else "")))
    return out


def check_agents(ctx: Context) -> list[Finding]:
    """Agents seen (by their devices' heartbeats) and every device's state."""
    if ctx.fleet is None:
        return [Finding("agents", "skip", "Redis is down: no fleet to read")]
    devices = ctx.fleet.devices()
    if not devices:
        return [Finding("agents", "fail", "no agent has registered a device",
                        "benchfarm agent --driver host (this CPU) or --driver ios (iPhones over usbmuxd)")]
    by_agent: dict[str, list[dict[str, str]]] = {}
    for d in devices:
        by_agent.setdefault(d.get("agent") or d.get("host", "?"), []).append(d)
    out = []
    for agent, ds in sorted(by_agent.items()):
        live = [d for d in ds if d.get("state") != "offline"]
        classes = ", ".join(sorted({d.get("device_class", "?") for d in ds}))
        out.append(Finding(f"agent {agent}", "ok" if live else "warn",
                           f"{len(live)}/{len(ds)} devices heard from ({classes})",
                           "" if live else f"start the agent on {ds[0].get('host', agent)} (benchfarm agent ...)"))
        out += [_device_state(d) for d in ds]
    return out


_STATE_REMEDY = {
    "quarantined": "benchfarm devices check {id} --wait (a pass releases it) or benchfarm devices release {id}",
    "maintenance": "benchfarm devices release {id} when the work on it is done",
    "offline": "is its agent running and the device attached? (benchfarm devices --local on its host)",
    # device states the iOS gating reports (developer services unusable until fixed on the device)
    "developer_mode_off": "Settings > Privacy & Security > Developer Mode on the device, then restart it",
    "ddi_missing": "pymobiledevice3 mounter auto-mount --udid {id} (benchfarm doctor on its host says more)",
}


def _device_state(d: dict[str, str]) -> Finding:
    state = d.get("state", "?")
    detail = f"{d.get('device_class', '?')} {d.get('os', '')} {d.get('os_version', '')}: {state}"
    if reason := d.get("state_reason") if state in _STATE_REMEDY else "":
        detail += f" ({reason})"
    # a condition state waits for a person at the device (the agent notices the fix by itself)
    status = "fail" if state in CONDITION_STATES else "warn" if state in _STATE_REMEDY else "ok"
    remedy = _STATE_REMEDY.get(state, "").format(id=d["id"])
    return Finding(f"device {d['id']}", status, " ".join(detail.split()), remedy)


def check_local_ios(ctx: Context) -> list[Finding]:
    from orchestrator.cli.doctor_ios import check_ios_devices

    return check_ios_devices(ctx.usbmux)


CHECKS: dict[Role, list[Check]] = {
    Role.coordinator: [check_redis, check_database, check_workers, check_agents],
    Role.agent: [check_redis, check_local_ios],
    Role.all: [check_redis, check_database, check_workers, check_agents, check_local_ios],
}
_MARK = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]", "skip": "[dim]skip[/]"}


def run_checks(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS[ctx.role]:
        try:
            findings += check(ctx)
        except Exception as exc:  # a broken check is a finding, not a crashed doctor
            findings.append(Finding(check.__name__.removeprefix("check_"), "fail",
                                    f"the check itself failed: {type(exc).__name__}: {str(exc)[:200]}"))
    return findings


def doctor_command(
    role: Role = typer.Option(Role.all, "--role", help="what this host is: coordinator | agent | all"),
    usbmux: str = typer.Option("", "--usbmux", help="usbmuxd address for the iOS checks (default: "
                                                    "USBMUXD_SOCKET_ADDRESS, else the system usbmuxd)"),
    as_json: bool = typer.Option(False, "--json", help="findings as JSON: check, status, detail, remedy"),
) -> None:
    """Check what this host's role needs, one line per check with its remedy; exit 1 when
    something needed is missing."""
    ctx = Context(role, config.redis_url(), usbmux or os.environ.get("USBMUXD_SOCKET_ADDRESS") or None)
    findings = run_checks(ctx)
    if as_json:
        print(json.dumps([asdict(f) for f in findings]))
    else:
        for f in findings:
            line = f"{_MARK[f.status]} {escape(f.check)}: {escape(f.detail)}"
            console.print(line + (f" [dim]→[/] {escape(f.remedy)}" if f.remedy else ""), soft_wrap=True,
                          highlight=False)
    failed = [f for f in findings if f.status == "fail"]
    if not as_json:
        console.print(f"{len(failed)} problem(s) need fixing" if failed else "nothing needed is missing",
                      style="bold red" if failed else "bold green")
    raise typer.Exit(1 if failed else 0)

"""``benchfarm audit``: the trail of writes (runs submitted/cancelled through the API, tokens
created/revoked), newest first. Read on the coordinator's host, like every store view."""

from __future__ import annotations

import json
from datetime import timedelta

import typer

from orchestrator.cli.common import console, fail
from orchestrator.cli.fit import Col, print_table

ACTIONS = ("run.submit", "run.cancel", "token.create", "token.revoke")
COLUMNS = [Col("at", "at", keep=True), Col("actor", "who", keep=True), Col("action", "what", keep=True),
           Col("run_id", "run", keep=True), Col("target_token_id", "token", drop=2), Col("token_id", "via", drop=3),
           Col("detail", "detail", note=True)]


def audit_command(
    actor: str = typer.Option("", "--actor", help="only this principal (or cli:USER)"),
    action: str = typer.Option("", "--action", help=f"only this action: {' | '.join(ACTIONS)}"),
    run: str = typer.Option("", "--run", help="only the writes to this run (full id)"),
    since: str = typer.Option("", "--since", help="only within this long: 90s, 6h, 7d ..."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000),
    wide: bool = typer.Option(False, "--wide", help="every column, nothing shortened"),
    as_json: bool = typer.Option(False, "--json", help="JSON: the fields of GET /audit"),
) -> None:
    """Who did what, when, to which run or token (secrets are never recorded)."""
    from sqlalchemy.exc import SQLAlchemyError

    from orchestrator.cli.capacity import parse_duration
    from orchestrator.store import audit
    from orchestrator.store.db import session
    from orchestrator.store.migrations import SchemaOutdated
    from orchestrator.store.models import utcnow

    if action and action not in ACTIONS:
        raise fail(f"--action {action!r}: one of {', '.join(ACTIONS)}", code=2)
    cutoff = utcnow() - timedelta(seconds=parse_duration(since, "--since")) if since else None
    try:
        with session() as s:
            rows = [audit.as_dict(e) for e in audit.query(s, actor=actor or None, action=action or None,
                                                          run_id=run or None, since=cutoff, limit=limit)]
    except SchemaOutdated as exc:
        raise fail(f"no audit trail to show: {exc}") from None
    except SQLAlchemyError as exc:
        raise fail(f"the results database does not answer ({type(exc).__name__}); no audit trail to show") from None
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        console.print("no writes recorded" + (" that match" if actor or action or run or since else ""))
        return
    table = [{**r, "at": r["at"][:19].replace("T", " "), "run_id": r["run_id"] or "",
              "target_token_id": r["target_token_id"] or "",
              "detail": " ".join(f"{k}={v}" for k, v in r["detail"].items())} for r in rows]
    print_table(console, COLUMNS, table, wide=wide)

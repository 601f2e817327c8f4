"""Service commands: ``benchfarm api``, ``benchfarm scheduler``, ``benchfarm tokens …`` and
``benchfarm pr submit`` (registered on the main app in ``orchestrator.cli.main``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from orchestrator.cli.common import console, fail

tokens_app = typer.Typer(help="API tokens (shown once at creation, stored hashed).", no_args_is_help=True)
pr_app = typer.Typer(help="Pull-request benchmark jobs and their verdict.", no_args_is_help=True)


def api_command(host: str = typer.Option("127.0.0.1", help="interface to listen on"),
                port: int = typer.Option(8000, help="TCP port")) -> None:
    """Serve the HTTP API (FastAPI + uvicorn); OpenAPI docs at /docs."""
    import uvicorn

    from orchestrator.api.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")


def scheduler_command(schedules: Path = typer.Option(..., "--schedules", help="schedules YAML file"),
                      max_interval: float = typer.Option(30.0, help="seconds between schedule checks; a "
                                                                     "standby takes over within 5x this")) -> None:
    """Run Celery beat on RedBeat: start one per host; exactly one leads at a time."""
    import logging

    from orchestrator.scheduling.beat import run_scheduler
    from orchestrator.spec.yamlpos import SpecError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_scheduler(schedules, max_interval)
    except SpecError as exc:
        raise fail(str(exc), code=2) from None


@tokens_app.command("create")
def tokens_create(name: str) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from orchestrator.api.auth import TokenError, create_token

    try:
        token = create_token(name)
    except TokenError as exc:
        raise fail(str(exc), code=2) from None
    console.print(f"token [bold]{name}[/] created; store it now, it is not shown again:", highlight=False)
    print(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """Token names and ids (never the secrets)."""
    from orchestrator.api.auth import list_tokens

    t = Table(title="API tokens")
    for col in ("name", "id", "created", "last used", "revoked"):
        t.add_column(col)
    for tok in list_tokens():
        t.add_row(tok.name, tok.id, f"{tok.created_at:%Y-%m-%d %H:%M}",
                  f"{tok.last_used_at:%Y-%m-%d %H:%M}" if tok.last_used_at else "",
                  f"{tok.revoked_at:%Y-%m-%d %H:%M}" if tok.revoked_at else "")
    console.print(t)


@tokens_app.command("revoke")
def tokens_revoke(name: str = typer.Argument(..., help="token name or id")) -> None:
    """Revoke a token: requests carrying it get 403 from now on."""
    from orchestrator.api.auth import revoke_token

    if not revoke_token(name):
        raise fail(f"no active token {name!r}")
    console.print(f"token {name} revoked")

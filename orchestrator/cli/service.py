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
def tokens_create(name: str,
                  scope: list[str] = typer.Option(
                      ["read", "submit", "cancel-own"], "--scope",
                      help="repeat or comma-separate: read (download programs), submit (queue runs), cancel-own "
                           "(cancel runs it owns), admin (cancel any run, manage tokens, read the audit)"),
                  principal: str = typer.Option("", help="who the token acts for and owns runs as (default: NAME); "
                                                         "several tokens of one person may share it"),
                  max_cells: int | None = typer.Option(
                      None, "--max-cells", min=1,
                      help="cells the principal's runs may have unfinished when this token submits (also the "
                           "most one spec may plan); default: the deployment's per-spec limit only")) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from orchestrator.api.auth import TokenError, create_token

    try:
        token = create_token(name, scope, principal, max_cells=max_cells)
    except TokenError as exc:
        raise fail(str(exc), code=2) from None
    console.print(f"token [bold]{name}[/] created; store it now, it is not shown again:", highlight=False)
    print(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """Token names, ids, principals and scopes (never the secrets)."""
    from orchestrator.api.auth import list_tokens

    t = Table(title="API tokens")
    for col in ("name", "id", "principal", "scopes", "max cells", "created", "last used", "revoked"):
        t.add_column(col)
    for tok in list_tokens():
        t.add_row(tok.name, tok.id, tok.principal, " ".join(tok.scopes),
                  f"{tok.max_cells:,}" if tok.max_cells else "", f"{tok.created_at:%Y-%m-%d %H:%M}",
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


def _publish_verdict(run_id: str, baseline: str, repo: str, pr: int, min_effect: float,
                     fail_on_regression: bool) -> None:
    """Print or post the verdict; exit 1 on a regression when asked to."""
    import os

    from orchestrator.pr import github as prdomain
    from orchestrator.reports.data import RunNotFound
    from orchestrator.store.db import session

    try:
        with session() as s:
            verdict = prdomain.pr_verdict(s, run_id, baseline, min_effect)
    except RunNotFound as exc:
        raise fail(str(exc)) from None
    # the regression_found webhook is the coordinator's, sent once when the run is finalised
    token = os.environ.get("GITHUB_TOKEN", "")
    if token:
        try:
            url = prdomain.upsert_comment(repo, pr, verdict.markdown, token)
        except (prdomain.GitHubError, OSError) as exc:
            raise fail(f"could not comment on {repo}#{pr}: {exc}") from None
        console.print(f"verdict posted on {repo}#{pr}: {url}", highlight=False)
    else:
        print(verdict.markdown)
    if fail_on_regression and verdict.regressions:
        raise fail(f"{len(verdict.regressions)} cell(s) slower than {baseline}", code=1)


@pr_app.command("submit")
def pr_submit(repo: str = typer.Option(..., help="OWNER/NAME"), pr: int = typer.Option(..., help="PR number"),
              spec: Path = typer.Option(None, "--spec", help="matrix spec of the PR's cells"),
              model: Path = typer.Option(None, "--model", help="an exported .pte to run instead of --spec"),
              name: str = typer.Option("", help="--model: model name to match baselines (default: file stem)"),
              backend: list[str] = typer.Option([], help="--model: backend(s) the .pte was lowered for"),
              device: list[str] = typer.Option([], help="--model: device class(es) to run on"),
              baseline: str = typer.Option("main", help="baseline branch"),
              branch: str = typer.Option("", help="the PR's branch (recorded on the run)"),
              commit: str = typer.Option(None, help="the PR's head commit (recorded on the run)"),
              wait: bool = typer.Option(False, "--wait", help="wait for the run, then give the verdict"),
              fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                                      help="exit 1 when a cell is slower (implies --wait)"),
              min_effect: float = typer.Option(0.05, help="smallest median change that counts (0.05 = 5%)"),
              timeout: float = typer.Option(3600, help="--wait gives up after this many seconds")) -> None:
    """Run a PR's cells (trigger pr: ahead of nightly work) and compare them with the baseline.

    With GITHUB_TOKEN set the verdict is posted as (or updates) one PR comment; otherwise printed.
    """
    from pydantic import ValidationError

    from orchestrator.api.submit import RunMeta
    from orchestrator.cli.common import fleet_or_exit, wait_for_run
    from orchestrator.export.sources import BadSource
    from orchestrator.pr import github as prdomain
    from orchestrator.spec.yamlpos import SpecError

    try:
        meta = RunMeta(repo=repo, pr=pr, branch=branch or None, baseline=baseline, commit=commit)
        text, source = prdomain.spec_from_args(spec, model, name, backend, device)
        fleet = fleet_or_exit()
        run_id = prdomain.submit_pr(text, source, fleet, meta)
    except (ValidationError, SpecError, BadSource, ValueError, OSError) as exc:
        raise fail(str(exc), code=2) from None
    console.print(f"PR run [bold]{run_id}[/] submitted for {repo}#{pr}", highlight=False)
    if wait or fail_on_regression:
        wait_for_run(run_id, timeout)
        _publish_verdict(run_id, baseline, repo, pr, min_effect, fail_on_regression)


@pr_app.command("verdict")
def pr_verdict_command(run_id: str, repo: str = typer.Option(..., help="OWNER/NAME"),
                       pr: int = typer.Option(..., help="PR number"),
                       baseline: str = typer.Option("main", help="baseline branch"),
                       fail_on_regression: bool = typer.Option(False, "--fail-on-regression"),
                       min_effect: float = typer.Option(0.05)) -> None:
    """The verdict of an already submitted PR run (e.g. after `pr submit` without --wait);
    RUN_ID may be a unique prefix, latest or latest:NAME."""
    from orchestrator.cli.common import resolve_run_or_exit

    _publish_verdict(resolve_run_or_exit(run_id), baseline, repo, pr, min_effect, fail_on_regression)

"""``benchfarm hosts ...`` and ``benchfarm harness ...``: fleet operations over SSH.

Every command reads the host inventory (``--inventory``, ``$BENCHFARM_HOSTS``, default
``hosts.yaml``) and verifies host keys against its ``known_hosts`` (``--known-hosts``
overrides). Exit codes: 0 ok, 1 an operation failed, 2 bad input (inventory errors name
file:line), and ``hosts exec`` exits with the remote command's own code.
"""

from __future__ import annotations

import json
import shlex
import threading
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.table import Table

from orchestrator import config
from orchestrator.cli.common import console, fail
from orchestrator.fleetops.errors import FleetOpsError
from orchestrator.fleetops.inventory import Host, Inventory, load_inventory
from orchestrator.fleetops.ssh import Remote, Timeouts
from orchestrator.spec.yamlpos import SpecError

hosts_app = typer.Typer(help="Operate the farm's hosts over SSH (inventory: hosts.yaml).",
                        no_args_is_help=True)
harness_app = typer.Typer(help="Build the iOS harness app on a macOS host.", no_args_is_help=True)

InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", envvar="BENCHFARM_HOSTS",
                                            help="host inventory YAML")]
KnownHostsOpt = Annotated[str | None, typer.Option("--known-hosts",
                                                   help="known_hosts file (overrides the inventory)")]
ConnectOpt = Annotated[float, typer.Option("--connect-timeout", help="seconds for TCP connect + SSH banner")]
CommandOpt = Annotated[float, typer.Option("--command-timeout", help="seconds a remote command may run")]
RetriesOpt = Annotated[int, typer.Option("--retries", help="extra connection attempts on transient failures")]
RedisOpt = Annotated[str | None, typer.Option("--redis-url", help="Redis of the fleet (default $REDIS_URL)")]
DEFAULT_INVENTORY = Path("hosts.yaml")


class _Ctx:
    """Inventory, known_hosts and timeouts resolved once per command."""

    def __init__(self, inventory: Path, known_hosts: str | None, connect: float, command: float,
                 retries: int):
        try:
            self.inventory: Inventory = load_inventory(inventory)
        except SpecError as exc:
            raise fail(str(exc), code=2) from None
        self.known_hosts = known_hosts or self.inventory.known_hosts
        self.timeouts = Timeouts(connect=connect, auth=max(connect, 15.0), command=command, retries=retries)

    def host(self, name: str) -> Host:
        try:
            return self.inventory.host(name)
        except KeyError as exc:
            raise fail(exc.args[0], code=2) from None

    def remote(self, name: str) -> Remote:
        return Remote(self.host(name), self.known_hosts, self.timeouts)


@hosts_app.command()
def check(hosts: Annotated[list[str] | None, typer.Argument(help="host names (default: all)")] = None,
          inventory: InventoryOpt = DEFAULT_INVENTORY, known_hosts: KnownHostsOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          concurrency: Annotated[int, typer.Option(help="hosts checked at once")] = 8,
          connect_timeout: ConnectOpt = 10.0, command_timeout: CommandOpt = 60.0,
          retries: RetriesOpt = 1) -> None:
    """Reachability, Python, disk, agent service, devices and clock skew of every host."""
    from orchestrator.fleetops.checks import check_all

    ctx = _Ctx(inventory, known_hosts, connect_timeout, command_timeout, retries)
    for name in hosts or []:
        ctx.host(name)
    statuses = check_all(ctx.inventory, ctx.known_hosts, ctx.timeouts, concurrency, hosts or None)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        t = Table(title="hosts")
        for col in ("host", "address", "ok", "python", "disk free", "agent", "drain", "skew", "devices"):
            t.add_column(col)
        for s in statuses:
            if not s.ok:
                t.add_row(s.name, s.address, "[red]no[/]", f"[red]{s.error_kind}[/]", "", "", "", "", s.error)
                continue
            devices = s.devices_note or f"{len(s.devices or [])}" + (
                f" [yellow](missing {', '.join(s.missing_classes)})[/]" if s.missing_classes else "")
            t.add_row(s.name, s.address, "[green]yes[/]", s.python, f"{s.disk_free_gb} GB", s.service,
                      "draining" if s.draining else "", f"{s.clock_skew_s:+.2f}s", devices)
        console.print(t)
    if not all(s.ok for s in statuses):
        raise typer.Exit(1)


@hosts_app.command()
def bootstrap(host: str, inventory: InventoryOpt = DEFAULT_INVENTORY, known_hosts: KnownHostsOpt = None,
              wheel: Annotated[Path | None, typer.Option(help="install this wheel, do not build")] = None,
              source: Annotated[Path, typer.Option(help="project dir to build the wheel from")] = Path("."),
              pip_args: Annotated[str, typer.Option(help="extra pip install arguments, e.g. --no-deps")] = "",
              system_site_packages: Annotated[bool, typer.Option(help="venv sees host packages")] = False,
              redis_url: RedisOpt = None, connect_timeout: ConnectOpt = 10.0,
              command_timeout: CommandOpt = 900.0, retries: RetriesOpt = 1,
              artifact_url: Annotated[str, typer.Option(
                  help="coordinator API the agent downloads programs from (default $BENCHFARM_ARTIFACT_URL; "
                       "the token comes from $BENCHFARM_API_TOKEN, never from the command line)")] = "") -> None:
    """Install the agent on HOST (wheel, venv, config, service) and start it; idempotent."""
    import os
    import tempfile

    from orchestrator.fleetops.bootstrap import bootstrap as run_bootstrap
    from orchestrator.fleetops.bootstrap import build_wheel

    ctx = _Ctx(inventory, known_hosts, connect_timeout, command_timeout, retries)
    target = ctx.host(host)
    with tempfile.TemporaryDirectory(prefix="benchfarm-wheel-") as tmp:
        try:
            if wheel is None:
                console.print(f"building wheel from {source.resolve()} ...")
                wheel = build_wheel(source, Path(tmp))
            elif not wheel.is_file():
                raise fail(f"--wheel {wheel}: no such file", code=2)
            artifact_url = artifact_url or os.environ.get("BENCHFARM_ARTIFACT_URL", "")
            api_token = os.environ.get("BENCHFARM_API_TOKEN", "")
            if artifact_url and not api_token:
                raise fail("--artifact-url needs $BENCHFARM_API_TOKEN (benchfarm tokens create NAME)", code=2)
            report = run_bootstrap(target, ctx.known_hosts, wheel, redis_url or config.redis_url(),
                                   shlex.split(pip_args), system_site_packages, ctx.timeouts, artifact_url, api_token)
        except FleetOpsError as exc:
            raise fail(str(exc)) from None
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(report.summary(), highlight=False)


@hosts_app.command("exec", context_settings={"ignore_unknown_options": True})
def exec_(host: str, command: Annotated[list[str], typer.Argument(help="command after --")],
          inventory: InventoryOpt = DEFAULT_INVENTORY, known_hosts: KnownHostsOpt = None,
          connect_timeout: ConnectOpt = 10.0, command_timeout: CommandOpt = 300.0,
          retries: RetriesOpt = 1) -> None:
    """Run a command on HOST (``benchfarm hosts exec HOST -- CMD ...``); exits with its code."""
    ctx = _Ctx(inventory, known_hosts, connect_timeout, command_timeout, retries)
    # one argument is taken as a shell line (pipes, globs); several are quoted as argv
    line = command[0] if len(command) == 1 else shlex.join(command)
    try:
        with ctx.remote(host) as remote:
            code = remote.stream(line, lambda b: click.echo(b, nl=False),
                                 lambda b: click.echo(b, nl=False, err=True))
    except FleetOpsError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@hosts_app.command()
def logs(host: str, lines: Annotated[int, typer.Option("--lines", "-n")] = 100,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
         inventory: InventoryOpt = DEFAULT_INVENTORY, known_hosts: KnownHostsOpt = None,
         connect_timeout: ConnectOpt = 10.0, retries: RetriesOpt = 1) -> None:
    """The agent's log on HOST (every service mode appends to <base_dir>/logs/agent.log)."""
    from orchestrator.fleetops.units import Layout

    ctx = _Ctx(inventory, known_hosts, connect_timeout, 60.0, retries)
    stop = threading.Event()
    try:
        with ctx.remote(host) as remote:
            log_file = Layout(remote.path(), remote.home).log
            argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), log_file]
            # following has no end: it runs until Ctrl-C, not until the command timeout
            timeout = 10 * 365 * 86400.0 if follow else None
            try:
                code = remote.stream(argv, lambda b: click.echo(b, nl=False),
                                     lambda b: click.echo(b, nl=False, err=True), timeout=timeout, stop=stop)
            except KeyboardInterrupt:
                stop.set()
                code = 0
    except FleetOpsError as exc:
        raise fail(str(exc)) from None
    if code not in (0, -1):
        raise fail(f"{host}: no agent log at {log_file} (was the host bootstrapped?)")


def _drain_cmd(host: str, inventory: Path, known_hosts: str | None, redis_url: str | None, undo: bool,
               connect_timeout: float, retries: int) -> None:
    from device_inventory.fleet import Fleet
    from orchestrator.fleetops.drain import drain, undrain

    ctx = _Ctx(inventory, known_hosts, connect_timeout, 60.0, retries)
    fleet = Fleet.from_url(redis_url or config.redis_url())
    try:
        report = (undrain if undo else drain)(ctx.host(host), ctx.known_hosts, fleet, ctx.timeouts)
    except FleetOpsError as exc:
        raise fail(str(exc)) from None
    verb = "undrained" if undo else "draining"
    console.print(f"{host}: {verb}; devices changed: {', '.join(report.devices) or 'none'}", highlight=False)
    if report.busy:
        console.print(f"{host}: still finishing jobs on {', '.join(report.busy)}", highlight=False)


@hosts_app.command("drain")
def drain_cmd(host: str, inventory: InventoryOpt = DEFAULT_INVENTORY, known_hosts: KnownHostsOpt = None,
              redis_url: RedisOpt = None, connect_timeout: ConnectOpt = 10.0,
              retries: RetriesOpt = 1) -> None:
    """HOST finishes its current jobs and takes no more (devices -> maintenance, drain marker)."""
    _drain_cmd(host, inventory, known_hosts, redis_url, False, connect_timeout, retries)


@hosts_app.command("undrain")
def undrain_cmd(host: str, inventory: InventoryOpt = DEFAULT_INVENTORY, known_hosts: KnownHostsOpt = None,
                redis_url: RedisOpt = None, connect_timeout: ConnectOpt = 10.0,
                retries: RetriesOpt = 1) -> None:
    """Undo ``drain``: devices the drain put in maintenance become available; marker removed."""
    _drain_cmd(host, inventory, known_hosts, redis_url, True, connect_timeout, retries)


@harness_app.callback()
def _harness() -> None:
    """Build the iOS harness app on a macOS host (keeps ``harness`` a command group)."""


@harness_app.command()
def build(host: Annotated[str, typer.Option("--host", help="a macOS host with role harness-builder")],
          source: Annotated[Path, typer.Option(help="XcodeGen harness source")] = Path("agents/harness/ios"),
          project: Annotated[str, typer.Option(help="Xcode project name")] = "BenchfarmHarness",
          scheme: Annotated[str, typer.Option(help="Xcode scheme")] = "BenchfarmHarness",
          store: Annotated[Path | None, typer.Option(help="default $BENCHFARM_ARTIFACTS/harness")] = None,
          team_id: Annotated[str | None, typer.Option(help="Apple team id (DEVELOPMENT_TEAM)")] = None,
          inventory: InventoryOpt = DEFAULT_INVENTORY, known_hosts: KnownHostsOpt = None,
          connect_timeout: ConnectOpt = 10.0, command_timeout: CommandOpt = 3600.0,
          retries: RetriesOpt = 1) -> None:
    """xcodegen + xcodebuild archive/export on a Mac; the signed .ipa lands in the store by sha256."""
    from orchestrator.fleetops.harness import build_harness

    ctx = _Ctx(inventory, known_hosts, connect_timeout, command_timeout, retries)
    try:
        result = build_harness(ctx.host(host), ctx.known_hosts, source,
                               store or config.artifacts_dir() / "harness", project, scheme, team_id,
                               ctx.timeouts)
    except FleetOpsError as exc:
        raise fail(str(exc)) from None
    console.print(f"harness {result.sha256} ({result.size} bytes) -> {result.path}", highlight=False)

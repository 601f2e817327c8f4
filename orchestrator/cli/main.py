"""The ``benchfarm`` command line."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.audit import audit_command
from orchestrator.cli.capacity import capacity_app
from orchestrator.cli.common import console, fail, fleet_or_exit, resolve_run_or_exit, wait_for_run
from orchestrator.cli.db import db_app
from orchestrator.cli.devices import devices_app
from orchestrator.cli.doctor import doctor_command
from orchestrator.cli.export import export_command
from orchestrator.cli.hosts import harness_app, hosts_app
from orchestrator.cli.profile import profile_command
from orchestrator.cli.report import compare_command, matrix_command, report_command
from orchestrator.cli.runs import runs_command
from orchestrator.cli.selftest import selftest_command
from orchestrator.cli.service import api_command, pr_app, scheduler_command, tokens_app
from orchestrator.cli.status import status_command
from orchestrator.pr import hooks

# the CLI submits, cancels and finalises runs: PR verification takes part as in the worker
hooks.install()

app = typer.Typer(help="benchfarm: benchmark ExecuTorch programs on a farm of iPhones/iPads.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(devices_app, name="devices")
app.command("export")(export_command)
app.command("runs")(runs_command)
app.command("doctor")(doctor_command)
app.command("status")(status_command)
app.command("matrix")(matrix_command)
app.command("report")(report_command)
app.command("compare")(compare_command)
app.command("profile")(profile_command)
app.add_typer(capacity_app, name="capacity")
app.add_typer(db_app, name="db")
app.add_typer(hosts_app, name="hosts")
app.add_typer(harness_app, name="harness")
app.command("api")(api_command)
app.command("scheduler")(scheduler_command)
app.add_typer(tokens_app, name="tokens")
app.command("audit")(audit_command)
app.add_typer(pr_app, name="pr")
app.command("selftest")(selftest_command)


@app.command()
def submit(spec: Path, wait: bool = typer.Option(False, "--wait", help="wait and print the matrix"),
           trigger: str = typer.Option("manual", help="manual | nightly | pr"),
           requested_by: str = typer.Option("", help="who asked (recorded on the run)"),
           timeout: float = typer.Option(3600, help="--wait gives up after this many seconds")) -> None:
    """Validate SPEC, plan its jobs and queue them."""
    from orchestrator.coordinator.submit import submit as submit_run
    from orchestrator.export.artifacts import ArtifactStore
    from orchestrator.export.programs import localize_spec_text
    from orchestrator.export.sources import BadSource
    from orchestrator.spec.matrix import loads_spec
    from orchestrator.spec.yamlpos import SpecError, read_text

    try:
        # a local pte:<path> is read here, as this user, and stored by digest: the coordinator reads no path
        text = localize_spec_text(read_text(spec), str(spec), ArtifactStore())
        matrix_spec = loads_spec(text, str(spec))
    except (SpecError, BadSource) as exc:
        raise fail(str(exc), code=2) from None
    fleet = fleet_or_exit()
    try:
        run_id, outbox = submit_run(matrix_spec, text, fleet, source=str(spec), trigger=trigger,
                                    requested_by=requested_by)
    except BadSource as exc:
        raise fail(str(exc), code=2) from None
    outbox.send()
    console.print(f"run [bold]{run_id}[/] submitted ({trigger})")
    if wait:
        status = wait_for_run(run_id, timeout)
        _print_matrix(run_id)
        console.print(f"run {run_id}: [bold]{status}[/]")
        if status == "failed":
            raise typer.Exit(1)


def _print_matrix(run_id: str) -> None:
    from orchestrator.cli.matrix_view import print_matrix
    from orchestrator.store.db import session

    with session() as s:
        print_matrix(console, s, run_id, compact=True)


@app.command()
def cancel(run_id: str = typer.Argument(..., help="run id, unique prefix, latest or latest:NAME")) -> None:
    """Cancel a run: queued jobs are dropped, running ones stopped at the agent."""
    from orchestrator.coordinator.cancel import cancel as cancel_run
    from orchestrator.coordinator.run_state import RunNotFound

    run_id = resolve_run_or_exit(run_id)
    try:
        n = cancel_run(run_id, fleet_or_exit())
    except RunNotFound:
        raise fail(f"no run {run_id!r}") from None
    console.print(f"cancelled {n} jobs of run {run_id}")


@app.command()
def agent(driver: list[str] | None = typer.Option(None, help="drivers to use: host, ios (default: host)"),
          name: str = typer.Option("", help="agent name (default: hostname)"),
          host_slots: int | None = typer.Option(None, help="host-CPU devices to expose (tests use >1; default 1)"),
          lease_ttl: float | None = typer.Option(
              None, help="seconds without heartbeat before a lease is reaped (default 30)"),
          usbmux: str = typer.Option("", help="usbmuxd address for the ios driver (host:port or path)"),
          ios_startup_allowance: float | None = typer.Option(
              None, "--ios-startup-allowance", metavar="SECONDS",
              help="ios driver: seconds allowed for launch and model load on top of a job's timeout (default 60)"),
          label: list[str] | None = typer.Option(
              None, "--label", help="label for every device of this agent (spec selector 'A15 label=NAME')"),
          config_file: Path | None = typer.Option(
              None, "--config", metavar="FILE.yaml",
              help="agent config file (examples/agent.yaml); flags given explicitly override it")) -> None:
    """Run the agent of this host: one device worker per attached device."""
    import logging
    import socket

    from agents.agent import Agent, AgentConfig
    from agents.config_file import AgentFile, inventory_labels, load_agent_file, resolve
    from orchestrator.spec.yamlpos import SpecError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    unknown = [d for d in driver or [] if d not in ("host", "ios")]
    if unknown:
        raise fail(f"unknown driver {unknown[0]!r} (known: host, ios)", code=2)
    flags_ios = {k: v for k, v in (("usbmux_address", usbmux), ("startup_allowance_s", ios_startup_allowance))
                 if v not in (None, "")}
    try:
        conf = resolve(load_agent_file(config_file) if config_file else AgentFile(), drivers=driver, name=name,
                       host_slots=host_slots, lease_ttl_s=lease_ttl, ios=flags_ios,
                       labels=[*(label or []), *inventory_labels()])
    except SpecError as exc:
        raise fail(str(exc), code=2) from None
    assert conf.drivers is not None and conf.host_slots is not None and conf.lease_ttl_s is not None
    name, lease_ttl = conf.name or "", conf.lease_ttl_s
    drivers: dict[str, dict] = {}
    if conf.drivers.host is not None:
        for slot in range(conf.host_slots):
            drivers["host" if slot == 0 else f"host{slot}"] = {"slot": f"{name or 'a'}{slot}"}
    if conf.drivers.ios is not None:
        drivers["ios"] = conf.drivers.ios.options()
    # three heartbeats per lease TTL: one lost heartbeat never costs a lease
    cfg = AgentConfig(name=name or socket.gethostname(), drivers=drivers, lease_ttl_s=lease_ttl,
                      heartbeat_s=min(5.0, lease_ttl / 3), labels=list(conf.labels or []),
                      device_labels=dict(conf.device_labels or {}))
    Agent(cfg, fleet_or_exit()).run()


@app.command()
def worker(queues: str = typer.Option("coordinator,export.linux", help="comma-separated queues"),
           concurrency: int = typer.Option(2), pool: str = typer.Option("threads"),
           hostname: str = typer.Option("")) -> None:
    """Run a coordinator / exporter worker (records results, reaps leases, exports)."""
    from orchestrator.worker import start

    fleet_or_exit()
    start([q.strip() for q in queues.split(",") if q.strip()], concurrency, pool, hostname)


@app.command()
def demo(spec: list[Path] = typer.Option(
             [], help="matrix specs to run (default: examples/seed-matrix.yaml, then examples/host-quick.yaml)"),
         fleet: Path = typer.Option(None, help="virtual fleet (default: examples/virtual-fleet.yaml)"),
         timeout: float = typer.Option(1800, help="give up on a run after this many seconds"),
         open_report: bool = typer.Option(False, "--open", help="open the first run's HTML report in a browser")
         ) -> None:
    """Start everything needed (virtual iOS fleet, coordinator, exporter, agent), run the seed
    matrix on virtual devices (simulated) and the host-CPU matrix (measured), print, write each
    run's HTML report (the paths are printed), shut down."""
    from orchestrator.cli.demo import run_demo

    raise typer.Exit(run_demo(spec, fleet, timeout, open_report))


if __name__ == "__main__":
    app()

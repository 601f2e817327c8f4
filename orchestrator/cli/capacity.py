"""``benchfarm capacity``: utilisation, waits, backlog and devices needed; ``capacity plan``:
what-if makespan of a matrix on a given fleet."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

from orchestrator.capacity.fmt import pct, secs
from orchestrator.cli.common import console, fail
from orchestrator.cli.fit import Col, print_table

capacity_app = typer.Typer(help="Capacity: utilisation, queue waits, backlog, devices needed.",
                           invoke_without_command=True)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str, option: str) -> float:
    """``90s``, ``5m``, ``6h``, ``7d``, ``1h30m`` -> seconds; anything else is a clear error."""
    s = text.strip().lower()
    parts = _DURATION.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise fail(f"{option} {text!r} is not a duration like 90s, 5m, 6h, 7d or 1h30m", code=2)
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise fail(f"{option} {text!r} must be longer than zero", code=2)
    return seconds


COLUMNS = (
    Col("class", "class", keep=True), Col("devices", "in service", keep=True, right=True),
    Col("states", "states now", drop=3), Col("util", "util", keep=True, right=True),
    Col("occupancy", "occupancy", drop=2, right=True), Col("queued", "queued", keep=True, right=True),
    Col("backlog", "backlog", drop=2, right=True), Col("drain", "drain ETA", keep=True),
    Col("pr_wait", "PR wait p50/p95", keep=True), Col("nightly_wait", "nightly wait p50/p95", drop=3),
    Col("service", "service", drop=4), Col("makespan", "nightly makespan / window", drop=3),
    Col("needed", "needed", keep=True, right=True), Col("needed_why", "needed: pr, nightly, +add", drop=1),
)
PLAN_COLUMNS = (Col("model", "model", hoist=True), Col("backend", "backend", keep=True),
                Col("device_class", "class", keep=True), Col("input", "input", hoist=True, drop=2),
                Col("repeat", "rep", drop=3, right=True), Col("est", "est. time", keep=True, right=True),
                Col("source", "source", keep=True))
HOST_COLUMNS = (Col("host", "host", keep=True), Col("devices", "devices", right=True),
                Col("util", "util", right=True), Col("occupancy", "occupancy", right=True))


def _class_row(cls: str, c: dict[str, Any]) -> dict[str, str]:
    w = c["waits"]
    pr, nightly = w.get("pr", {}), w.get("nightly", {})
    latest = c["nightly"]["latest"] or {}
    need = c["devices_needed"]
    nightly_need = "window too short" if need["nightly"] is None else str(need["nightly"])
    return {"class": cls, "devices": f'{c["devices"]["in_service"]}/{c["devices"]["total"]}',
            "states": " ".join(f"{k}={v}" for k, v in c["devices"]["by_state"].items()),
            "util": pct(c["utilisation"]), "occupancy": pct(c["occupancy"]), "queued": str(c["queue_depth"]["total"]),
            "backlog": str(c["backlog_jobs"]), "drain": secs(c["drain_eta_s"]),
            "pr_wait": f'{secs(pr.get("p50_s"))}/{secs(pr.get("p95_s"))}',
            "nightly_wait": f'{secs(nightly.get("p50_s"))}/{secs(nightly.get("p95_s"))}',
            "service": secs(c["service"]["mean_s"]),
            "makespan": f'{secs(latest.get("makespan_s"))} / {secs(c["nightly"]["window_s"])}',
            "needed": str(need["total"]), "needed_why": f'pr {need["pr_wait"]}, nightly {nightly_need}, +{need["add"]}'}


def _print_report(report: dict[str, Any], wide: bool = False) -> None:
    rows = [_class_row(cls, c) for cls, c in report["classes"].items()]
    print_table(console, COLUMNS, rows, wide=wide,
                title=f"capacity over the last {secs(report['window_s'])} (live state: {report['live_source']})")
    if report["hosts"]:
        hosts = [{"host": host, "devices": str(v["devices"]), "util": pct(v["utilisation"]),
                  "occupancy": pct(v["occupancy"])} for host, v in report["hosts"].items()]
        print_table(console, HOST_COLUMNS, hosts, title="per host", wide=wide)
    console.print(f"[dim]{report['model_note']}; targets: PR wait p95 ≤ "
                  f"{secs(report['targets']['pr_wait_p95_s'])}, nightly ≤ "
                  f"{secs(report['targets']['nightly_makespan_s'])}[/]")


@capacity_app.callback()
def capacity(ctx: typer.Context,
             window: str = typer.Option("7d", "--window", help="history to look at: 90s, 5m, 6h, 7d ..."),
             device_class: str = typer.Option("", "--class", help="only this device class"),
             target_pr_wait: str = typer.Option("5m", "--target-pr-wait", help="PR queue-wait p95 target"),
             target_nightly: str = typer.Option("6h", "--target-nightly", help="nightly run window"),
             wide: bool = typer.Option(False, "--wide", help="every column"),
             as_json: bool = typer.Option(False, "--json", help="JSON for scripts (orchestrator.capacity.report)")
             ) -> None:
    """Per device class: devices by state, utilisation, queue depth, waits, drain ETA, devices needed."""
    if ctx.invoked_subcommand:
        return
    from device_inventory.catalog import UnknownDeviceClass, catalog
    from orchestrator.capacity.report import Targets, capacity_report

    cls = None
    if device_class:
        try:
            cls = catalog().resolve_class(device_class).id
        except UnknownDeviceClass as exc:
            raise fail(f"--class: {exc}", code=2) from None
    targets = Targets(pr_wait_p95_s=parse_duration(target_pr_wait, "--target-pr-wait"),
                      nightly_makespan_s=parse_duration(target_nightly, "--target-nightly"))
    report = capacity_report(parse_duration(window, "--window"), cls, targets)
    if as_json:
        print(json.dumps(report, default=str))
    else:
        _print_report(report, wide)


@capacity_app.command("plan")
def plan_cmd(spec: Path,
             devices: str = typer.Option(..., "--devices", help="fleet to assume, e.g. A17-Pro=4,A15=2"),
             trigger: str = typer.Option("manual", "--trigger",
                                         help="plan as a manual, nightly or pr run: its run rule's minimum "
                                              "iterations and seconds per cell (nightly: >= 1024 and >= 60 s)"),
             wide: bool = typer.Option(False, "--wide", help="every column"),
             as_json: bool = typer.Option(False, "--json", help="JSON for scripts (orchestrator.capacity.whatif)")
             ) -> None:
    """Estimate the makespan of SPEC's matrix on a fleet of the given size."""
    from orchestrator.capacity.whatif import DevicesSpecError, parse_devices, plan_makespan
    from orchestrator.spec.matrix import load_spec
    from orchestrator.spec.run_rules import TRIGGERS
    from orchestrator.spec.yamlpos import SpecError

    if trigger not in TRIGGERS:
        raise fail(f"--trigger {trigger!r}: one of {', '.join(TRIGGERS)}", code=2)
    try:
        fleet = parse_devices(devices)
        matrix = load_spec(spec, local_files=True)
        result = plan_makespan(matrix, fleet, trigger=trigger)  # planned only: no file is read
    except (SpecError, DevicesSpecError) as exc:
        raise fail(str(exc), code=2) from None
    if as_json:
        print(json.dumps(result))
        return
    rows = [{**{k: str(v) for k, v in r.items()}, "input": f"{r['input_resolution']} b{r['batch_size']}",
             "est": secs(r["service_s"])} for r in result["cells"]]
    print_table(console, PLAN_COLUMNS, rows, title=f"what-if: {result['spec']} on {devices}", wide=wide)
    for cls, c in result["classes"].items():
        console.print(f"{cls}: {c['jobs']} jobs on {c['devices']} devices, makespan ≈ {secs(c['makespan_s'])} "
                      f"(bounds {secs(c['bound_lower_s'])}–{secs(c['bound_upper_s'])})")
    rr = result["run_rule"]
    rule = (f"{rr['timed_iterations']} timed iterations" + (f", at least {rr['min_duration_s']:g} s" if
                                                            rr["min_duration_s"] else "")
            + (" per arm, A/B: both programs" if rr["arms"] == 2 else "") + " per cell")
    console.print(f"[bold]makespan ≈ {secs(result['makespan_s'])}[/] as a {trigger} run ({rule})")
    nightly = matrix.parameters.run_rules.for_trigger("nightly")
    if trigger == "manual" and (nightly.min_iterations > rr["timed_iterations"] or nightly.min_duration_s):
        console.print(f"a nightly run measures more (its run rule: >= {nightly.min_iterations} iterations and "
                      f">= {nightly.min_duration_s:g} s per cell): --trigger nightly")
    if result["seed_cells"]:
        console.print(f"[yellow]{result['seed_cells']} cells have no history: their times are seed estimates "
                      "(simulated), not measurements[/]")
    if result["unknown_cells"]:
        console.print(f"[yellow]{result['unknown_cells']} cells have neither history nor seed figures and are "
                      "left out of the makespan[/]")

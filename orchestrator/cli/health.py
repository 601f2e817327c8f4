"""``benchfarm devices check``: golden health checks on demand (agents.health_check)."""

from __future__ import annotations

import time

import typer

from agents import health_schedule as health
from device_inventory.fleet import Fleet
from orchestrator.cli.common import console, fail, fleet_or_exit
from orchestrator.cli.runref import RefError, unique_prefix

# devices in these states have no worker that would run the check (or should not be disturbed)
UNCHECKABLE = ("offline", "maintenance")


def check_command(
        device_ids: list[str] = typer.Argument(None, help="devices to check (default: every device not offline "
                                                          "or in maintenance)"),
        wait: bool = typer.Option(False, "--wait", help="wait for the verdicts and print them"),
        timeout: float = typer.Option(600, help="--wait gives up after this many seconds")) -> None:
    """Run the golden health check (tiny model, known output) on devices; a pass releases a
    quarantined device, a failure quarantines it."""
    from orchestrator.celery_app import app

    fleet = fleet_or_exit()
    known = {d["id"]: d for d in fleet.devices()}
    targets = list(device_ids or [d for d, info in known.items() if info.get("state") not in UNCHECKABLE])
    requests = []
    for ref in targets:
        try:
            device_id = unique_prefix(known, ref, "device")
        except RefError as exc:
            raise fail(str(exc)) from None
        info = known[device_id]
        if info.get("state") in UNCHECKABLE:
            console.print(f"device {device_id} is {info['state']}: not checked")
            continue
        request = health.new_request(device_id, "on_demand")
        health.send(app, request)
        requests.append(request)
        console.print(f"health check {request['check_id']} sent to {device_id}")
    if not requests:
        raise fail("no device to check")
    if not wait:
        return
    records = _wait_for_records(fleet, [r["check_id"] for r in requests], timeout)
    _print_records(records)
    if any(r.get("verdict") != "passed" for r in records):
        raise typer.Exit(1)


def _wait_for_records(fleet: Fleet, check_ids: list[str], timeout: float) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    records: dict[str, dict[str, str]] = {}
    while len(records) < len(check_ids):
        for check_id in check_ids:
            if check_id not in records and (rec := fleet.health_check(check_id)):
                records[check_id] = rec
        if len(records) == len(check_ids):
            break
        if time.monotonic() > deadline:
            missing = ", ".join(c for c in check_ids if c not in records)
            raise fail(f"no verdict after {timeout:.0f} s for {missing}")
        time.sleep(0.5)
    return [records[c] for c in check_ids]


def _print_records(records: list[dict[str, str]]) -> None:
    # one line per check, not a table: verdicts are read by scripts and narrow terminals alike
    for r in records:
        transition = r.get("transition", "")
        console.print(f"{r.get('device_id')}: {r.get('verdict')} ({transition}) in {r.get('duration_s')} s, "
                      f"{r.get('backend') or '-'}; output {r.get('output_check')}; {r.get('detail')}",
                      highlight=False, markup=False, soft_wrap=True)

"""``benchfarm devices``: the fleet's devices fitted to the terminal; ``devices release``.

Device ids are shown as their shortest unique prefix (like git's short hashes) and accepted
that way by ``devices release`` and ``devices check``. What every device shares (``simulated``,
one OS version, one host) is said once above the table; state reasons are footnotes.

``--json`` prints the fleet's records as they are in Redis (stable fields: ``id``,
``device_class``, ``product_type``, ``name``, ``os``, ``os_version``, ``chip``, ``host``,
``driver``, ``agent``, ``simulated``, ``labels``, ``state``, ``state_reason``, ``state_since``,
``battery``, ``thermal``, ``charging``, ``job_id``, ``attempt_id``, ``health_check``,
``health_check_at``, ``health_check_detail``; absent when never set), plus ``stability``
(``recent_cv``, ``earlier_cv``, ``results``, ``noisy``, ``degrading``: from the results store,
``orchestrator.analysis.stability``) for a device with results. Without a results store at the
schema head the view shows no stability column and says why.
"""

from __future__ import annotations

import json
import re
from typing import Any

import typer

from orchestrator.analysis.stability import DeviceStability
from orchestrator.cli.common import console, fail, fleet_or_exit
from orchestrator.cli.device_stability import device_stabilities
from orchestrator.cli.fit import Col, print_table
from orchestrator.cli.health import check_command
from orchestrator.cli.runref import RefError, shortest_unique, unique_prefix

devices_app = typer.Typer(help="Devices of the fleet.", invoke_without_command=True)
devices_app.command("check")(check_command)

COLUMNS = (
    Col("short_id", "device", keep=True), Col("device_class", "class", keep=True),
    Col("product_type", "model", drop=3), Col("os", "os", hoist=True, drop=1), Col("state", "state", keep=True),
    Col("battery", "batt", drop=2, right=True), Col("thermal", "thermal", drop=2), Col("job", "job", keep=True),
    Col("health", "health", drop=4), Col("stability", "stability", drop=2),
    Col("host", "host", hoist=True, drop=5), Col("labels", "labels", drop=5),
    Col("simulated", "data", hoist=True, drop=2), Col("reason", "reason", note=True),
)
_SHORT_DEVICE = 8  # a UDID's first 8 characters are its chip id: shared by every device of a class
_WORKING = ("available", "leased", "busy", "offline")
_UDID = re.compile(r"[0-9A-Fa-f-]{20,}")


def device_row(d: dict[str, Any], short: dict[str, str], wide: bool) -> dict[str, str]:
    """One fleet record as table cells. A host device's OS version is a kernel release, which
    says nothing about speed: its CPU model is shown instead."""
    battery = d.get("battery", "")
    host_cpu = d.get("device_class") == "host-cpu"
    os_text = d.get("os", "") if host_cpu else f"{d.get('os', '')} {d.get('os_version', '')}".strip()
    return {
        "short_id": d["id"] if wide else short[d["id"]], "device_class": d.get("device_class", ""),
        "product_type": d.get("chip", "") if host_cpu else d.get("product_type", ""), "os": os_text,
        "state": d.get("state", ""), "battery": f"{float(battery):.0f}%" if battery else "",
        "thermal": d.get("thermal", ""), "job": d.get("job_id", "")[: None if wide else 7],
        "health": d.get("health_check", ""), "host": d.get("host", ""), "labels": d.get("labels", ""),
        "simulated": "simulated" if d.get("simulated") == "True" else "measured",
        # offline is derived from a missed heartbeat: the stored reason is from an earlier state
        "reason": d.get("state_reason", "") if d.get("state") not in _WORKING else "",
    }


def _with_stability(row: dict[str, str], stab: DeviceStability | None) -> dict[str, str]:
    """The stability column; a degrading device is also a footnote, which no width drops
    (a noisy phone is as harmful as a broken one)."""
    if stab is None:
        return row
    reason = row["reason"]
    if stab.degrading:
        reason = "; ".join(p for p in (reason, f"stability {stab.label()}") if p)
    return {**row, "stability": stab.label(), "reason": reason}


def resolve_device(known: list[str], ref: str) -> str:
    """A device id from its id or a unique prefix, or exit 1 naming the candidates."""
    try:
        return unique_prefix(known, ref, "device")
    except RefError as exc:
        raise fail(f"{exc} (benchfarm devices lists them)") from None


@devices_app.callback()
def devices(ctx: typer.Context,
            wide: bool = typer.Option(False, "--wide", help="every column, full ids"),
            as_json: bool = typer.Option(False, "--json", help="JSON for scripts (fields: see --help of the module)"),
            local: bool = typer.Option(False, "--local", help="discover this host's devices directly")) -> None:
    """Devices: class, OS, state, battery, thermal, current job, last health check."""
    if ctx.invoked_subcommand:
        return
    records: list[dict[str, Any]] = list(_discover_here() if local else fleet_or_exit().devices())
    stab, why_not = device_stabilities() if records else ({}, "")
    if as_json:
        for d in records:
            if d["id"] in stab:
                s = stab[d["id"]]
                d["stability"] = {"recent_cv": round(s.recent_cv, 5), "results": s.results, "noisy": s.noisy,
                                  "degrading": s.degrading,
                                  "earlier_cv": None if s.earlier_cv is None else round(s.earlier_cv, 5)}
        print(json.dumps(records, default=str))
        return
    if not records:
        console.print("no devices yet: start an agent (benchfarm agent --driver host), or benchfarm doctor")
        return
    # UDIDs shortened like git hashes; names such as host:mini-1:0 are short and say more whole
    short = {d: s if _UDID.fullmatch(d) else d
             for d, s in shortest_unique((d["id"] for d in records), _SHORT_DEVICE).items()}
    rows = [_with_stability(device_row(d, short, wide), stab.get(d["id"])) for d in records]
    print_table(console, COLUMNS, rows, title="devices", wide=wide)
    if why_not:
        console.print(why_not, markup=False, highlight=False)


def _discover_here() -> list[dict[str, Any]]:
    from agents.drivers import make_driver

    rows: list[dict[str, Any]] = []
    for name in ("host", "ios"):
        try:
            rows += [{**d.as_dict(), "simulated": str(d.simulated)} for d in make_driver(name).discover()]
        except Exception as exc:  # no usbmuxd, no pymobiledevice3 pairing: say so, go on
            console.print(f"driver {name}: {str(exc)[:200]}", markup=False, highlight=False)
    return rows


@devices_app.command("release")
def devices_release(device_id: str = typer.Argument(..., help="device id or a unique prefix")) -> None:
    """Return a quarantined device to service."""
    fleet = fleet_or_exit()
    device_id = resolve_device([d["id"] for d in fleet.devices()], device_id)
    fleet.release_quarantine(device_id)
    console.print(f"device {device_id} released")

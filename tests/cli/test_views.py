"""The operator's views at fixed widths (80 and 120 columns): every row shown, no id or state
word cut, reasons as footnotes, what all rows share said once. Real SQLite, real Redis."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from device_inventory.fleet import Fleet
from orchestrator.cli.main import app
from tests.conftest import redis_or_skip
from tests.reports.factory import add_cell, add_run, seed_run

from .rows import LONG_REASON

CLI_REDIS_DB = 14
runner = CliRunner()
DEVICES = [
    ("00008130-001A2B3C4D5E6F70", "A17-Pro", "iPhone16,1", "17.5", "available"),
    ("00008130-001A2B3C4D5E9999", "A17-Pro", "iPhone16,1", "17.5", "quarantined"),
    ("00008110-000C1D2E3F405162", "A15", "iPhone14,5", "16.6", "busy"),
    ("00008112-0012AB34CD56EF78", "M2", "iPad14,3", "17.5", "maintenance"),
]


def bf(*args: str, width: int) -> tuple[int, str]:
    out = runner.invoke(app, list(args), env={"COLUMNS": str(width)})
    return out.exit_code, out.output


def fits(out: str, width: int) -> None:
    assert "…" not in out and all(len(line) <= width for line in out.splitlines()), out


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    url = redis_or_skip(CLI_REDIS_DB)
    monkeypatch.setenv("REDIS_URL", url)
    f = Fleet.from_url(url)
    f.r.flushdb()
    for udid, cls, product, os_version, state in DEVICES:
        f.register(udid, {"device_class": cls, "product_type": product, "name": product, "os": "iOS",
                          "os_version": os_version, "host": "mini-1", "simulated": True, "driver": "ios"})
        if state != "available":
            f.set_state(udid, state, LONG_REASON if state == "quarantined" else "rack move")
    f.heartbeat("00008110-000C1D2E3F405162", 30, status={"job_id": "5a099f9e1c2b4d6e", "battery": "87.0"})
    f.register("host:mini-1:0", {"device_class": "host-cpu", "product_type": "host", "os": "Linux",
                                 "os_version": "6.1.0-18-amd64", "chip": "AMD EPYC 7B13", "host": "mini-1",
                                 "simulated": False, "driver": "host"})
    yield f
    f.r.flushdb()


@pytest.mark.parametrize("width", [80, 120])
def test_devices_fit(fleet: Fleet, width: int) -> None:
    code, out = bf("devices", width=width)
    assert code == 0, out
    fits(out, width)
    for udid, _cls, _product, _os, state in DEVICES:
        row = [ln for ln in out.splitlines() if len(first := (ln.split() or [""])[0]) >= 8 and udid.startswith(first)]
        assert len(row) == 1 and re.search(rf"\s{state}\s", row[0] + " "), out
    assert "host:mini-1:0" in out and "6.1.0-18" not in out  # a kernel release says nothing here
    assert "host mini-1" in out.splitlines()[0]  # one host: said once
    assert LONG_REASON.replace(" ", "") in out.replace("\n", "").replace(" ", "")
    if width >= 120:
        assert "AMD EPYC 7B13" in out
    assert "5a099f9" in out  # the busy device's job, short


def test_device_prefixes(fleet: Fleet) -> None:
    assert bf("devices", "release", "00008130-001A2B3C4D5E99", width=80)[0] == 0
    assert fleet.device("00008130-001A2B3C4D5E9999")["state"] == "available"
    code, out = bf("devices", "release", "00008130", width=80)
    assert code == 1 and "ambiguous" in out and "00008130-001A2B3C4D5E6F70" in out
    records = json.loads(bf("devices", "--json", width=80)[1])
    assert {"id", "device_class", "state", "os_version"} <= set(records[0])


@pytest.mark.parametrize("width", [80, 120])
def test_matrix_fits_and_says_simulated_once(store: Session, width: int) -> None:
    run = seed_run(store)
    other = add_run(store, "host", "manual")
    add_cell(store, other, "tiny_cnn", "xnnpack", "host-cpu", state="failed", reason=LONG_REASON)
    store.commit()
    code, out = bf("matrix", run.id, width=width)
    assert code == 0, out
    fits(out, width)
    assert "iPhone 15 Pro (A17 Pro) — simulated; iOS 17.5" in out and "iPhone 13 (A15 Bionic) — simulated" in out
    rows = [ln for ln in out.splitlines() if ln.startswith(("CoreML ", "MPS ", "XNNPACK "))]
    assert len(rows) == 9 and not any("simulated" in r or "iOS" in r for r in rows)  # once per table
    assert all(" blocked " in r for r in rows if r.startswith("MPS "))
    assert "blocked: needs a macOS exporter" in out and "failed: model failure" in out
    assert "Inference" in out and "Model" in out
    code, out = bf("matrix", "latest", width=width)
    assert code == 0 and "failed" in out and LONG_REASON.split()[-1] in out.replace("\n", "")
    wide = bf("matrix", run.id, "--wide", width=width)[1]
    assert "10 FPS budget" in wide and "Thermal" in wide
    tables = json.loads(bf("matrix", run.id, "--json", width=width)[1])
    a17 = tables[0]
    assert a17["simulated"] and a17["platforms"] == "iOS 17.5" and "Inference Time" in a17["columns"]
    mps = next(r for r in a17["rows"] if r["values"]["Backend"] == "MPS")
    assert mps["state"] == "blocked" and mps["reason"] == "blocked: needs a macOS exporter"


@pytest.mark.parametrize("width", [80, 120])
def test_capacity_fits(fleet: Fleet, store: Session, width: int) -> None:
    code, out = bf("capacity", "--window", "1h", width=width)
    assert code == 0, out
    fits(out, width)
    for cls in ("A17-Pro", "A15", "M2", "host-cpu"):
        assert any(ln.startswith(cls + " ") for ln in out.splitlines()), out
    assert json.loads(bf("capacity", "--json", "--window", "1h", width=width)[1])["classes"]["A15"]


@pytest.mark.parametrize("width", [80, 120])
def test_resolution_table_fits(store: Session, width: int) -> None:
    """The seed's resolution table as the demo prints it after the matrix."""
    from io import StringIO

    from rich.console import Console

    from orchestrator.cli.matrix_view import print_resolution_tables

    run = seed_run(store)
    store.commit()
    buf = StringIO()
    print_resolution_tables(Console(file=buf, width=width), store, run.id)
    out = buf.getvalue()
    fits(out, width)
    assert "Resolution sweep" in out and "Preprocessing" in out and "Total" in out
    rows = [ln.split() for ln in out.splitlines() if ln.lstrip().startswith(("224×224", "160×160", "128×128"))]
    assert [r[0] for r in rows] == ["224×224", "160×160", "128×128"]
    assert rows[0][1:7] == ["8", "ms", "15", "ms", "24", "ms"]  # preprocessing + inference + post = total

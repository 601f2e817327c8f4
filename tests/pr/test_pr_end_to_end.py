"""``benchfarm pr submit --wait --fail-on-regression`` with a real worker, a real host agent
and ExecuTorch on this CPU, against a stored baseline that is impossibly fast: the PR's
real measurement must come out slower, and the command must exit 1."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from device_inventory.fleet import Fleet
from orchestrator.cli.service import pr_app
from orchestrator.pr import github as prdomain
from orchestrator.store.db import session
from tests.conftest import Procs, wait_until
from tests.reports.factory import add_cell, add_run

SPEC = """name: pr-e2e
models: [tiny_cnn]
backends: [xnnpack]
devices: [host-cpu]
parameters: {input_resolution: [64], warmup: 1, iterations: 10, timeout_s: 120,
             run_rules: {all: {min_iterations: 0, min_duration_s: 0}}}  # light: a test
"""


def test_pr_submit_wait_fails_on_regression(svc_env: dict[str, str], tmp_path: Path) -> None:
    with session() as s:
        base = add_run(s, "nightly", "nightly", datetime(2026, 11, 1, 2, 0))
        base.finalized = True
        add_cell(s, base, "tiny_cnn", "xnnpack", "host-cpu", 64, median=0.001, iterations=20)
        base_id = base.id
    (tmp_path / "pr.yaml").write_text(SPEC)
    procs = Procs(svc_env, tmp_path)
    try:
        procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
        procs.start("agent", "agent", "--driver", "host", "--name", "pr-e2e")
        fleet = Fleet.from_url(svc_env["REDIS_URL"])
        wait_until(lambda: any(d.get("state") == "available" for d in fleet.devices()), 60, "the host device")
        out = CliRunner().invoke(pr_app, ["submit", "--spec", str(tmp_path / "pr.yaml"), "--repo", "acme/app",
                                          "--pr", "5", "--wait", "--fail-on-regression", "--timeout", "240"])
    finally:
        procs.stop_all()
    assert out.exit_code == 1, out.output + procs.log("worker")[-3000:] + procs.log("agent")[-3000:]
    text = " ".join(out.output.split())
    assert prdomain.MARKER in text and f"`{base_id}`" in text and "🔴 slower" in text
    assert "1 cell(s) slower than main" in text

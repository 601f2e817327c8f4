"""Operator profiles through the real farm: a worker, a host agent, ExecuTorch on this CPU.

1. A nightly baseline of ``zoo:tiny_cnn``: its profiling pass fills the operator table;
   the API, ``benchfarm profile`` and the HTML report (opened in headless Chromium) show it.
2. A run whose pass aborts the runtime (an intermediate-output buffer far too small: an
   assert in etdump_flatcc kills the harness process) keeps its timing result; only the
   profile is lost, and the same agent goes on to the next run.
3. A PR whose program adds one expensive block: the A/B verdict is slower and the PR
   comment's operator diff names that block's operators first, as existing in the PR only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.api.submit import RunMeta
from orchestrator.coordinator.submit import submit
from orchestrator.pr import github as prdomain
from orchestrator.reports.build import build_report
from orchestrator.reports.html import report_html
from orchestrator.spec.matrix import loads_spec
from orchestrator.store import profiles
from orchestrator.store.db import session
from orchestrator.store.models import Job, Result, Run
from tests.browser import go_offline, headless_chromium
from tests.conftest import register_model_packages, wait_until

# light run rules: a test, stated
PARAMS = "parameters: {{input_resolution: [64], warmup: 2, iterations: 20, timeout_s: 120, ab_rounds: 2, " \
         "profile_iterations: 10, run_rules: {{all: {{min_iterations: 0, min_duration_s: 0}}}}{extra}}}\n"
CELL = "backends: [xnnpack]\ndevices: [host-cpu]\n"
NIGHTLY = "name: nightly-prof\nmodels: [tiny_cnn]\n" + CELL + PARAMS.format(extra="")
ABORT = "name: abort-prof\nmodels: [tiny_cnn]\n" + CELL + PARAMS.format(extra=", profile_debug_buffer_bytes: 64")
PR = ("name: pr-prof\nmodels: [{name: tiny_cnn, source: 'import:tests.profile.models:tiny_cnn_plus_block'}]\n"
      + CELL + PARAMS.format(extra=""))
LABEL = "tiny_cnn/xnnpack/host-cpu@64x1"


def _finalized(run_id: str) -> bool:
    with session() as s:
        return bool(s.get(Run, run_id).finalized)


def _submit(text: str, fleet: Fleet, trigger: str) -> str:
    run_id, outbox = submit(loads_spec(text), text, fleet, trigger=trigger)
    outbox.send()
    wait_until(lambda: _finalized(run_id), 300, f"run {run_id}")
    return run_id


def _job(s, run_id: str, purpose: str = "measure") -> Job:
    return s.scalars(select(Job).where(Job.run_id == run_id, Job.purpose == purpose)).one()


def cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], env=dict(env, COLUMNS="200"),
                          capture_output=True, text=True, timeout=120)


def test_profiles_end_to_end(bf_env, procs, tmp_path: Path, monkeypatch) -> None:
    register_model_packages(bf_env, monkeypatch, "tests.profile.models")  # the PR's import: source
    procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
    agent = procs.start("agent", "agent", "--driver", "host", "--name", "prof")
    fleet = Fleet.from_url(bf_env["REDIS_URL"])
    wait_until(lambda: any(d.get("state") == "available" for d in fleet.devices()), 60, "the host device")

    # 1. the baseline's profile: operator table, API, CLI
    nightly = _submit(NIGHTLY, fleet, "nightly")
    with session() as s:
        job = _job(s, nightly)
        assert job.state == "succeeded", (job.reason, procs.log("agent")[-3000:])
        prof = profiles.for_job(s, job.id)
        result = s.scalars(select(Result).where(Result.job_id == job.id)).one()
        assert "operators" not in result.document["profile"]  # stored once: in the operator table
    assert prof is not None and prof.status == "ok" and not prof.simulated and prof.iterations == 10
    assert prof.etrecord and prof.etdump_path.startswith("etdumps/")
    assert (Path(bf_env["BENCHFARM_ARTIFACTS"]) / prof.etdump_path).stat().st_size > 0  # kept as a file
    assert {op.backend for op in prof.operators if op.delegated} == {"XnnpackBackend"}
    total = sum(op.mean_ms for op in prof.operators)
    assert 0 < total <= prof.method_mean_ms * 1.001 and abs(sum(op.share for op in prof.operators) - total
                                                             / prof.method_mean_ms) < 1e-6
    from orchestrator.api.app import create_app

    with TestClient(create_app(fleet)) as client:
        body = client.get(f"/runs/{nightly}/profiles").json()
        [cell] = body["cells"]
        assert cell["cell"] == LABEL and cell["profile"]["operators"] and body["simulated"] is False
        one = client.get(f"/runs/{nightly}/profiles/{LABEL}").json()
        assert one["profile"]["operators"][0]["p50_ms"] >= 0 and "XNNPACK" in one["backend_shares"]
        assert client.get(f"/runs/{nightly}/profiles/no-such-cell").status_code == 404
    out = cli(bf_env, "profile", nightly, "xnnpack")
    assert out.returncode == 0 and "Convolution (NHWC, F32)" in out.stdout and "XNNPACK" in out.stdout, out

    # 2. an aborting profiler: timing recorded, profile lost, agent alive
    aborted = _submit(ABORT, fleet, "manual")
    with session() as s:
        job = _job(s, aborted)
        assert job.state == "succeeded", job.reason
        result = s.scalars(select(Result).where(Result.job_id == job.id)).one()
        assert len(result.document["latencies_ms"]) == 20 and result.median_ms > 0
        lost = profiles.for_job(s, job.id)
    assert lost is not None and lost.status == "error" and lost.error_category == "profiler_aborted"
    assert "exit status -6" in lost.error  # SIGABRT, as the driver saw the harness die
    assert agent.poll() is None

    # 3. the PR adds a block: slower, and the comment names the block's operators first
    pr_id = prdomain.submit_pr(PR, "pr.yaml", fleet, RunMeta(repo="acme/app", pr=9, baseline="main"))
    wait_until(lambda: _finalized(pr_id), 400, "the PR run and its verify re-run")
    assert agent.poll() is None  # the agent that saw the abort ran the PR's jobs
    with session() as s:
        job = _job(s, pr_id)
        assert job.state == "succeeded" and job.ab_rounds == 2, job.reason
        assert profiles.for_job(s, job.id, arm="B") is not None  # the baseline's pass, same lease
        verdict = prdomain.pr_verdict(s, pr_id, "main")
        report = report_html(build_report(s, pr_id))
    (comp,) = verdict.comparisons
    assert comp.verdict.verdict == "slower", comp
    md = verdict.markdown
    assert "Where the change comes from" in md and "A/B profiling passes on the same device" in md, md
    section = md[md.index("Where the change comes from"):]
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    # the block's operators lead, as existing in the PR's program only; nothing else is one-sided
    assert "only in the PR's program" in rows[0] and "Convolution" in rows[0], section
    assert any("HardSwish" in r and "only in the PR's program" in r for r in rows), section
    # XNNPACK runs the block as three operators: the 3x3 convolution, the Hardswish and the
    # 1x1 projection (as a fully-connected GEMM); nothing else is one-sided
    assert "The graph changed: 3 operator(s) exist only in the PR's program, 0 only in the baseline's" in section
    one_sided = [r for r in rows if "only in" in r]
    assert all(any(k in r for k in ("Convolution", "HardSwish", "Fully Connected")) for r in one_sided), section
    print("\n" + section)
    out = cli(bf_env, "profile", pr_id, LABEL, "--compare", nightly)
    assert out.returncode == 0 and "only in this run's program" in out.stdout, out

    # the HTML report, in a real browser: one operator chart with laid-out bars
    page = tmp_path / "report.html"
    page.write_text(report)
    _check_in_chromium(page)


def _check_in_chromium(page: Path) -> None:
    from selenium.webdriver.common.by import By

    with headless_chromium() as browser:
        go_offline(browser)  # the report is one offline file: nothing may need the network
        browser.get(page.as_uri())
        [chart] = browser.find_elements(By.CSS_SELECTOR, "svg.plot.operators")
        bars = chart.find_elements(By.CSS_SELECTOR, "g.op-bar rect")
        assert len(bars) >= 3 and all(b.size["width"] >= 1 for b in bars)
        widths = [b.size["width"] for b in bars]
        assert widths == sorted(widths, reverse=True)  # largest first
        assert "Convolution" in chart.text
        assert "XNNPACK" in browser.find_element(By.CSS_SELECTOR, "div.profile p.shares").text
        matrix = browser.find_element(By.ID, "device-host-cpu").find_element(By.XPATH, "following-sibling::table")
        assert "Top operator" in matrix.text and "Convolution" in matrix.text  # the most expensive op, named

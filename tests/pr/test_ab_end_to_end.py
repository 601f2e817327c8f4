"""Interleaved A/B and the verify re-run, end to end: a real worker, a real host agent and
ExecuTorch on this CPU. A nightly run measures ``zoo:tiny_cnn``; a PR replaces the model
under the same name with a much heavier one. The PR's job must run both programs ABBA in
one lease on one device, the suspected regression must be re-run once, and the verdict
must say slower on the strength of the in-lease comparison, confirmed by the re-run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.api.submit import RunMeta
from orchestrator.coordinator.submit import submit
from orchestrator.pr import github as prdomain
from orchestrator.pr.verify import AB_BASIS
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result, Run
from tests.conftest import Procs, register_model_packages, wait_until
from tests.webhook_sink import webhook_sink

CELL = "backends: [xnnpack]\ndevices: [host-cpu]\nparameters: {input_resolution: [64], warmup: 2, iterations: 30, " \
       "timeout_s: 120, ab_rounds: 2, ab_max_rounds: 6,\n" \
       "             run_rules: {all: {min_iterations: 0, min_duration_s: 0}}}\n"  # light: a test, stated
NIGHTLY = "name: nightly-ab\nmodels: [tiny_cnn]\n" + CELL
PR = "name: pr-ab\nmodels: [{name: tiny_cnn, source: 'import:tests.pr.ab_models:slower_tiny_cnn'}]\n" + CELL


def _finalized(run_id: str) -> bool:
    with session() as s:
        return bool(s.get(Run, run_id).finalized)


def test_pr_cell_runs_interleaved_with_its_baseline_and_a_regression_is_verified(
        svc_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register_model_packages(svc_env, monkeypatch, "tests.pr.ab_models")  # the PR's import: source
    sink = webhook_sink()
    hook_url, hooks = sink.__enter__()
    procs = Procs(dict(svc_env, BENCHFARM_WEBHOOK_URL=hook_url), tmp_path)
    fleet = Fleet.from_url(svc_env["REDIS_URL"])
    try:
        procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
        procs.start("agent", "agent", "--driver", "host", "--name", "ab")
        wait_until(lambda: any(d.get("state") == "available" for d in fleet.devices()), 60, "the host device")
        nightly, outbox = submit(loads_spec(NIGHTLY), NIGHTLY, fleet, trigger="nightly")
        outbox.send()
        wait_until(lambda: _finalized(nightly), 240, "the nightly run")
        pr_id = prdomain.submit_pr(PR, "pr.yaml", fleet, RunMeta(repo="acme/app", pr=7, baseline="main"))
        wait_until(lambda: _finalized(pr_id), 300, "the PR run and its verify re-run")
    finally:
        procs.stop_all()
        sink.__exit__(None, None, None)
    logs = procs.log("worker")[-3000:] + procs.log("agent")[-3000:]
    with session() as s:
        base_job = s.scalars(select(Job).where(Job.run_id == nightly)).one()
        jobs = {j.purpose: j for j in s.scalars(select(Job).where(Job.run_id == pr_id))}
        assert set(jobs) == {"measure", "verify"}, ([(j.purpose, j.state, j.reason) for j in jobs.values()], logs)
        for job in jobs.values():
            # the PR's own program, paired with the baseline's (a different artifact, same cell)
            assert job.state == "succeeded" and job.artifact_key != base_job.artifact_key
            assert job.baseline_artifact_key == base_job.artifact_key and job.ab_rounds == 2
            result = s.scalars(select(Result).where(Result.job_id == job.id)).one()
            # at least the minimum 2 rounds (ABBA), more while undecided, at most 6
            adaptive = result.ab["adaptive"]
            rounds = adaptive["rounds_done"]
            assert 2 <= rounds <= 6 and adaptive["stop_reason"] in ("decided", "max rounds"), adaptive
            assert result.ab["order"] == ("ABBA" * 3)[:2 * rounds] and not result.ab["baseline_error"]
            assert len(result.ab["latencies_ms"]) == len(result.document["latencies_ms"]) == 15 * rounds
            # one lease, one device: both arms' launches are steps of the same attempt
            attempt = s.get(Attempt, result.attempt_id)
            arms = "".join(step.get("arm") for step in attempt.timeline if step["step"] == "run")
            assert arms == result.ab["order"], attempt.timeline
            assert result.median_ms > 1.5 * result.ab["median_ms"]  # the heavier program, measured slower
            run_s = sum(step["duration_s"] for step in attempt.timeline if step["step"] == "run")
            print(f"\nA/B {job.purpose}: PR median {result.median_ms:.2f} ms, baseline (same lease) "
                  f"{result.ab['median_ms']:.2f} ms, {2 * rounds} launches {run_s:.1f} s; order "
                  f"{result.ab['order']} ({adaptive['stop_reason']})")
        run_meta = s.get(Run, pr_id).meta
        verdict = prdomain.pr_verdict(s, pr_id, "main")
    assert run_meta["verify"]["cells"] == ["tiny_cnn/xnnpack/host-cpu@64x1"]
    (comp,) = verdict.comparisons
    assert comp.verdict.verdict == "slower" and comp.basis == AB_BASIS, comp
    assert comp.verdict.rounds is not None and comp.verdict.rounds >= 2 and comp.verdict.ci[0] > 1.0
    assert "confirmed by the verify re-run" in comp.note
    assert verdict.baseline_runs == {}  # nothing was compared with a stored run's numbers
    text = " ".join(verdict.markdown.split())
    assert "interleaved A/B" in text and "re-run once to verify" in text and "🔴 slower" in text
    assert f"{comp.verdict.rounds} rounds" in text  # the comment says how many rounds it rests on
    # the coordinator's webhooks: each run finished once, the confirmed regression once
    events = [(h["event"], h["payload"]["run_id"]) for h in hooks]
    assert sorted(events) == sorted([("run_finished", nightly), ("run_finished", pr_id),
                                     ("regression_found", pr_id)]), events
    [found] = [h["payload"] for h in hooks if h["event"] == "regression_found"]
    assert found["cells"] == ["tiny_cnn/xnnpack/host-cpu@64x1"] and (found["repo"], found["pr"]) == ("acme/app", 7)

"""The verify re-run of a suspected regression, from real DB rows: when a PR run's jobs are
done the coordinator adds one verify job per slower cell (once), and the verdict keeps
"slower" only when the re-run agrees."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.pr import github as prdomain
from orchestrator.pr.verify import AB_BASIS
from orchestrator.store.db import session
from orchestrator.store.models import Job, Result, Run
from tests.reports.factory import add_cell, add_run


def _pr_run(s, medians: dict[str, float], ab_median: float | None = None) -> Run:  # noqa: ANN001
    """A PR run whose measure jobs ran at ``medians[purpose]``; with ``ab_median`` each
    result also carries an in-lease baseline arm at that median."""
    run = add_run(s, "pr", "pr", datetime(2026, 11, 24, 12, 0))
    run.meta = {"repo": "acme/app", "pr": 9, "baseline": "main"}
    for i, (purpose, median) in enumerate(medians.items()):
        for job in add_cell(s, run, "tiny_cnn", "xnnpack", "host-cpu", 64, median=median, cv=0.03, seed=i + 40,
                            iterations=40):
            job.purpose, job.repeat_index = purpose, i
            if ab_median is not None:
                result = s.scalars(select(Result).where(Result.job_id == job.id)).one()
                lat = list(np.random.default_rng(i + 60).normal(ab_median, ab_median * 0.03, 40))
                own = result.document["latencies_ms"]
                # four ABBA rounds of 10 iterations per launch: the launch medians the verdict pairs
                rounds = [{"arm": arm, "round": r, "median_ms": float(np.median(series[10 * r:10 * r + 10]))}
                          for r in range(4) for arm, series in (("A", own), ("B", lat))]
                result.ab = {"order": "ABBAABBA", "rounds": rounds, "baseline_artifact_key": "x",
                             "baseline_error": "", "latencies_ms": lat, "simulated": False}
    return run


def _nightly(s, median: float) -> Run:  # noqa: ANN001
    run = add_run(s, "nightly", "nightly", datetime(2026, 11, 23, 2, 0))
    run.finalized = True
    add_cell(s, run, "tiny_cnn", "xnnpack", "host-cpu", 64, median=median, cv=0.03, seed=3, iterations=40)
    return run


def test_a_suspected_regression_gets_one_verify_job_before_the_run_is_final(svc_env: dict[str, str]) -> None:
    fleet = Fleet.from_url(svc_env["REDIS_URL"])
    with session() as s:
        _nightly(s, 10.0)
        run_id = _pr_run(s, {"measure": 13.0}).id
    outbox = Outbox()
    with session() as s:
        assert finalize_if_done(s, run_id, outbox, fleet) is False  # verify first
    with session() as s:
        assert finalize_if_done(s, run_id, outbox, fleet) is False  # the verify job is open
        run = s.get(Run, run_id)
        verify = [j for j in run.jobs if j.purpose == "verify"]
        assert not run.finalized and run.meta["verify"]["cells"] == ["tiny_cnn/xnnpack/host-cpu@64x1"]
    assert len(verify) == 1 and verify[0].state == "waiting-for-device"
    assert [m.task for m in outbox.messages] == ["benchfarm.run_job"]  # dispatched exactly once
    assert outbox.messages[0].args[0]["job_id"] == verify[0].id


def test_a_cell_within_noise_is_finalised_without_verify(svc_env: dict[str, str]) -> None:
    fleet = Fleet.from_url(svc_env["REDIS_URL"])
    with session() as s:
        _nightly(s, 10.0)
        run_id = _pr_run(s, {"measure": 10.05}).id
    outbox = Outbox()
    with session() as s:
        assert finalize_if_done(s, run_id, outbox, fleet) is True
        run = s.get(Run, run_id)
        assert run.meta["verify"]["cells"] == [] and not outbox.messages
        assert len(s.scalars(select(Job).where(Job.run_id == run_id)).all()) == 1


def test_verify_that_disagrees_turns_the_verdict_to_within_noise(svc_env: dict[str, str]) -> None:
    with session() as s:
        _nightly(s, 10.0)
        run_id = _pr_run(s, {"measure": 12.0, "verify": 10.1}, ab_median=10.0).id
        v = prdomain.pr_verdict(s, run_id)
    (comp,) = v.comparisons
    assert comp.verdict.verdict == "within noise" and comp.basis == AB_BASIS
    assert "not confirmed by the verify re-run" in comp.note and not v.regressions


def test_verify_that_agrees_keeps_slower(svc_env: dict[str, str]) -> None:
    with session() as s:
        base = _nightly(s, 10.0)
        run_id = _pr_run(s, {"measure": 13.0, "verify": 13.2}).id  # no A/B: the stored run is the baseline
        v = prdomain.pr_verdict(s, run_id)
    (comp,) = v.comparisons
    assert comp.verdict.verdict == "slower" and comp.basis == f"baseline run `{base.id}`"
    assert "confirmed by the verify re-run" in comp.note and v.baseline_runs == {comp.key: base.id}
    assert "re-run" in v.markdown and "🔴 slower" in v.markdown

"""PR verdicts from real DB rows, the GitHub comment against a local server, webhooks, CLI."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.cli.service import pr_app
from orchestrator.observability.notify import notify
from orchestrator.pr import github as prdomain
from orchestrator.reports.data import CellKey
from orchestrator.store.db import session
from orchestrator.store.models import Run
from tests.pr.fake_github import FakeGitHub
from tests.reports.factory import add_cell, add_run
from tests.webhook_sink import webhook_sink

SPEC = "name: pr-cells\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n"


def _run(s, trigger: str, day: int, branch: str | None = None, finalized: bool = True,  # noqa: ANN001
         pr: int | None = None) -> Run:
    run = add_run(s, trigger, trigger, datetime(2026, 11, day, 2, 0))
    run.finalized = finalized
    run.meta = {k: v for k, v in (("branch", branch), ("pr", pr), ("repo", "acme/app" if pr else None)) if v}
    return run


@pytest.fixture
def pr_run_id(svc_env: dict[str, str]) -> str:
    """Nightly baselines of different ages, decoys that must not be picked, and a PR run."""
    with session() as s:
        old = _run(s, "nightly", 20)
        add_cell(s, old, "mobilenet_v3_small", "xnnpack", "host-cpu", median=30.0, seed=1)
        new = _run(s, "nightly", 23)
        add_cell(s, new, "mobilenet_v3_small", "xnnpack", "host-cpu", median=10.0, seed=2)
        add_cell(s, new, "resnet18", "coreml", "A17-Pro", median=20.0, seed=3, simulated=True)
        manual_main = _run(s, "manual", 22, branch="main")
        add_cell(s, manual_main, "tiny_cnn", "xnnpack", "host-cpu", median=5.0, seed=4)
        feature = _run(s, "pr", 24, branch="feature")  # another branch: never a baseline
        add_cell(s, feature, "mobilenet_v3_small", "xnnpack", "host-cpu", median=99.0, seed=5)
        unfinished = _run(s, "nightly", 25, finalized=False)
        add_cell(s, unfinished, "mobilenet_v3_small", "xnnpack", "host-cpu", median=99.0, seed=6)
        cand = _run(s, "pr", 26, branch="my-pr", pr=42)
        add_cell(s, cand, "mobilenet_v3_small", "xnnpack", "host-cpu", median=13.0, seed=7)  # slower
        add_cell(s, cand, "resnet18", "coreml", "A17-Pro", median=20.0, seed=8, simulated=True)  # noise
        add_cell(s, cand, "tiny_cnn", "xnnpack", "host-cpu", median=4.0, seed=9)  # faster
        add_cell(s, cand, "resnet18", "xnnpack", "host-cpu", median=30.0, seed=10)  # no baseline
        return cand.id, {"old": old.id, "new": new.id, "manual": manual_main.id}


def test_verdict_picks_latest_finalised_baseline_per_cell(pr_run_id) -> None:  # noqa: ANN001
    run_id, ids = pr_run_id
    with session() as s:
        v = prdomain.pr_verdict(s, run_id, "main")
    assert v.baseline_runs == {
        CellKey("mobilenet_v3_small", "xnnpack", "host-cpu", 224, 1): ids["new"],
        CellKey("resnet18", "coreml", "A17-Pro", 224, 1): ids["new"],
        CellKey("tiny_cnn", "xnnpack", "host-cpu", 224, 1): ids["manual"],
    }
    verdicts = {c.key.model + "/" + c.key.backend: c.verdict.verdict for c in v.comparisons}
    assert verdicts == {"mobilenet_v3_small/xnnpack": "slower", "resnet18/coreml": "within noise",
                        "tiny_cnn/xnnpack": "faster", "resnet18/xnnpack": "insufficient data"}
    assert [c.key.model for c in v.regressions] == ["mobilenet_v3_small"]
    md = v.markdown
    assert md.startswith(prdomain.MARKER) and "PR #42 vs `main`" in md
    assert f"`{ids['new']}`" in md and f"`{ids['manual']}`" in md and ids["old"] not in md
    sim_rows = [line for line in md.splitlines() if "*(simulated)*" in line]
    assert len(sim_rows) == 1 and "resnet18" in sim_rows[0]
    assert "🔴 slower" in md and "🟢 faster" in md and "not in baseline" in md
    assert "baseline runs: " in md and "\n\n| Cell |" in md


def test_other_baseline_branch(pr_run_id) -> None:  # noqa: ANN001
    run_id, _ids = pr_run_id
    with session() as s:
        v = prdomain.pr_verdict(s, run_id, "release-1")
    assert v.baseline_runs == {} and not v.regressions
    assert "none (no finalised `release-1` results" in v.markdown


def test_comment_created_then_updated(svc_env: dict[str, str]) -> None:
    with FakeGitHub() as gh:
        gh.comments[1] = {"id": 1, "issue": ("acme/app", 42), "body": "LGTM", "html_url": "x"}
        url = prdomain.upsert_comment("acme/app", 42, f"{prdomain.MARKER}\nfirst", "ghp_secret", gh.url)
        url2 = prdomain.upsert_comment("acme/app", 42, "second", "ghp_secret", gh.url)
    assert url == url2 and url.endswith("#issuecomment-1001")
    assert [(r["method"], r["path"].split("?")[0]) for r in gh.requests] == [
        ("GET", "/repos/acme/app/issues/42/comments"), ("POST", "/repos/acme/app/issues/42/comments"),
        ("GET", "/repos/acme/app/issues/42/comments"), ("PATCH", "/repos/acme/app/issues/comments/1001")]
    assert all(r["headers"]["Authorization"] == "Bearer ghp_secret" for r in gh.requests)
    ours = [c for c in gh.comments.values() if prdomain.MARKER in c["body"]]
    assert len(ours) == 1 and ours[0]["body"].endswith("second") and gh.comments[1]["body"] == "LGTM"


def test_github_error_is_reported(svc_env: dict[str, str]) -> None:
    with FakeGitHub() as gh, pytest.raises(prdomain.GitHubError, match="HTTP 404"):
        prdomain.upsert_comment("acme/app", 42, "x", "ghp_secret", gh.url + "/nope")


def test_cli_verdict_posts_and_fails_on_regression(pr_run_id, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    run_id, _ids = pr_run_id
    runner = CliRunner()
    out = runner.invoke(pr_app, ["verdict", run_id, "--repo", "acme/app", "--pr", "42"])
    assert out.exit_code == 0, out.output
    assert prdomain.MARKER in out.output and "🔴 slower" in out.output
    with FakeGitHub() as gh:
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        out = runner.invoke(pr_app, ["verdict", run_id, "--repo", "acme/app", "--pr", "42",
                                     "--fail-on-regression"])
    assert out.exit_code == 1 and "slower than main" in out.output
    assert "ghp_secret" not in out.output and "🔴" not in out.output  # posted, not printed
    assert [c["body"] for c in gh.comments.values()][0].startswith(prdomain.MARKER)


def test_cli_submit_records_a_pr_run(svc_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "pr.yaml").write_text(SPEC)
    runner = CliRunner()
    out = runner.invoke(pr_app, ["submit", "--spec", str(tmp_path / "pr.yaml"), "--repo", "acme/app",
                                 "--pr", "7", "--branch", "feat", "--commit", "abc1234"])
    assert out.exit_code == 0, out.output
    with session() as s:
        run = s.scalar(select(Run))
        assert (run.trigger, run.priority, run.requested_by) == ("pr", 0, "pr:acme/app#7")
        assert run.meta == {"repo": "acme/app", "pr": 7, "branch": "feat", "baseline": "main", "commit": "abc1234"}
    bad = runner.invoke(pr_app, ["submit", "--spec", str(tmp_path / "pr.yaml"), "--model", "m.pte",
                                 "--repo", "acme/app", "--pr", "7"])
    assert bad.exit_code == 2 and "exactly one of --spec" in bad.output
    bad = runner.invoke(pr_app, ["submit", "--model", str(tmp_path / "m.pte"), "--backend", "xnnpack",
                                 "--device", "host-cpu", "--repo", "acme/app", "--pr", "7"])
    assert bad.exit_code == 2 and "no such file" in " ".join(bad.output.split())


def test_cli_submit_a_pte_model(svc_env: dict[str, str], tmp_path: Path) -> None:
    pte = tmp_path / "detector-v2.pte"
    pte.write_bytes(b"\x1c\x00\x00\x00ET12" + b"\x00" * 256)
    out = CliRunner().invoke(pr_app, ["submit", "--model", str(pte), "--name", "detector", "--backend", "xnnpack",
                                      "--device", "host-cpu", "--repo", "acme/app", "--pr", "8"])
    assert out.exit_code == 0, out.output
    with session() as s:
        run = s.scalar(select(Run))
        assert run.trigger == "pr" and [(j.model, j.state) for j in run.jobs] == [("detector", "waiting-for-device")]
        assert str(pte) not in run.spec_yaml and "pte:sha256:" in run.spec_yaml  # by digest, not the CI path


def test_webhook_posts_json_and_never_raises(svc_env: dict[str, str]) -> None:
    with webhook_sink() as (url, got):
        assert notify("regression_found", {"run_id": "r1"}, url)
        assert got[0]["event"] == "regression_found" and got[0]["payload"] == {"run_id": "r1"}
        assert not notify("no_such_event", {}, url)
    assert not notify("run_finished", {}, url.replace("/hook", "/gone"), timeout_s=1)  # the receiver is gone
    assert not notify("run_finished", {})  # no BENCHFARM_WEBHOOK_URL: nothing to do

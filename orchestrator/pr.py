"""PR jobs: submit a PR's cells, find each cell's baseline, give a verdict, comment on GitHub.

Baseline of a cell (model × backend × device class × resolution × batch): the newest
*finalised* run, other than the PR's own, that has results for that cell and belongs to
the baseline branch — its ``meta.branch`` is the baseline, or it is a nightly run (the
nightly matrix runs main) that names no other branch. Different cells may come from
different runs; each is listed in the verdict. The statistics (Mann-Whitney + bootstrap
CI + minimum effect) are ``orchestrator.analysis``'s; the table is ``orchestrator.reports``'.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator.analysis.compare import CellComparison, compare_runs
from orchestrator.api.submit import RunMeta, submit_spec_text
from orchestrator.reports.data import CellKey, RunData, RunInfo, load_run
from orchestrator.reports.markdown import verdict_markdown
from orchestrator.store.models import Job, Result, Run

MARKER = "<!-- benchfarm -->"
DEFAULT_GITHUB_API = "https://api.github.com"
GITHUB_TIMEOUT_S = 20
# a PR with more comments than this is not searched further for ours (a new one is posted)
MAX_COMMENT_PAGES = 20


class GitHubError(RuntimeError):
    pass


@dataclass(frozen=True)
class PrVerdict:
    run_id: str
    markdown: str
    comparisons: list[CellComparison]
    baseline_runs: dict[CellKey, str]

    @property
    def regressions(self) -> list[CellComparison]:
        return [c for c in self.comparisons if c.verdict.verdict == "slower"]


def submit_pr(spec_text: str, source: str, fleet: Fleet, meta: RunMeta, requested_by: str = "") -> str:
    """Submit the PR's cells with trigger ``pr`` (served before queued nightly work)."""
    run_id, _jobs = submit_spec_text(spec_text, fleet, source=source, trigger="pr",
                                     requested_by=requested_by or f"pr:{meta.repo}#{meta.pr}", meta=meta)
    return run_id


def _on_baseline(run: Run, branch: str) -> bool:
    meta = run.meta or {}
    return meta.get("branch") == branch or (run.trigger == "nightly" and meta.get("branch", "main") == branch)


def find_baselines(s: Session, candidate: RunData, branch: str = "main") -> dict[CellKey, str]:
    """For each measured cell of ``candidate``, the run id of its newest baseline."""
    wanted = {c.key for c in candidate.cells}
    if not wanted:
        return {}
    rows = s.execute(
        select(Job.model, Job.backend, Job.device_class, Job.input_resolution, Job.batch_size, Run)
        .join(Result, Result.job_id == Job.id).join(Run, Run.id == Job.run_id)
        .where(Run.finalized.is_(True), Run.id != candidate.run.id,
               Job.model.in_({k.model for k in wanted}), Job.backend.in_({k.backend for k in wanted}))
        .order_by(Run.created_at.desc())).all()
    found: dict[CellKey, str] = {}
    for *key_parts, run in rows:
        key = CellKey(*key_parts)
        if key in wanted and key not in found and _on_baseline(run, branch):
            found[key] = run.id
    return found


def pr_verdict(s: Session, run_id: str, branch: str = "main", min_effect: float = 0.05) -> PrVerdict:
    """Compare a PR run's cells with their baselines (raises ``reports.data.RunNotFound``)."""
    candidate = load_run(s, run_id)
    baselines = find_baselines(s, candidate, branch)
    loaded = {rid: load_run(s, rid).by_key() for rid in set(baselines.values())}
    base_cells = [loaded[rid][key] for key, rid in sorted(baselines.items())]
    baseline = RunData(RunInfo("baseline", f"baseline {branch}", "nightly", "succeeded", datetime.min, {}),
                       base_cells)
    comparisons = compare_runs(baseline, candidate, min_effect)  # baseline cells are a subset of the PR's
    return PrVerdict(run_id, _markdown(candidate, comparisons, baselines, branch), comparisons, baselines)


def _markdown(candidate: RunData, comparisons: list[CellComparison], baselines: dict[CellKey, str],
              branch: str) -> str:
    meta = candidate.run.meta
    title = f"PR #{meta['pr']}" if meta.get("pr") else f"run `{candidate.run.id}`"
    runs = sorted(set(baselines.values()))
    sources = ", ".join(f"`{r}`" for r in runs) if runs else f"none (no finalised `{branch}` results for these cells)"
    head = [MARKER, f"## benchfarm: {title} vs `{branch}`", "",
            f"Run `{candidate.run.id}` ({candidate.run.status}) · baseline runs: {sources}", ""]
    return "\n".join(head) + "\n" + verdict_markdown(comparisons, f"Baseline (`{branch}`)", "PR")


def _github(token: str, api_url: str | None) -> httpx.Client:
    return httpx.Client(base_url=api_url or os.environ.get("GITHUB_API_URL", DEFAULT_GITHUB_API),
                        timeout=GITHUB_TIMEOUT_S,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                                 "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "benchfarm"})


def _checked(resp: httpx.Response, what: str) -> httpx.Response:
    if resp.status_code >= 400:
        # the response body is GitHub's message; the request (and its token) is not echoed
        raise GitHubError(f"GitHub {what}: HTTP {resp.status_code}: {resp.text[:300]}")
    return resp


def upsert_comment(repo: str, pr: int, body: str, token: str, api_url: str | None = None) -> str:
    """Post the verdict, or update our earlier comment (found by its marker); return its URL."""
    if MARKER not in body:
        body = f"{MARKER}\n{body}"
    with _github(token, api_url) as gh:
        existing = None
        for page in range(1, MAX_COMMENT_PAGES + 1):
            comments = _checked(gh.get(f"/repos/{repo}/issues/{pr}/comments",
                                       params={"per_page": 100, "page": page}), "list comments").json()
            existing = next((c for c in comments if MARKER in (c.get("body") or "")), None)
            if existing is not None or len(comments) < 100:
                break
        if existing is not None:
            resp = _checked(gh.patch(f"/repos/{repo}/issues/comments/{existing['id']}", json={"body": body}),
                            "update comment")
        else:
            resp = _checked(gh.post(f"/repos/{repo}/issues/{pr}/comments", json={"body": body}), "create comment")
    return resp.json().get("html_url", "")


def spec_from_args(spec: Path | None, model: Path | None, name: str, backends: list[str],
                   devices: list[str]) -> tuple[str, str]:
    """(spec text, source) for ``--spec`` or ``--model FILE.pte`` (stored content-addressed)."""
    from orchestrator.api.uploads import pte_spec_text

    if (spec is None) == (model is None):
        raise ValueError("give exactly one of --spec SPEC or --model FILE.pte")
    if spec is not None:
        return spec.read_text(), str(spec)
    if not backends or not devices:
        raise ValueError("--model needs at least one --backend and one --device")
    return pte_spec_text(model, name or model.stem, backends, devices), str(model)

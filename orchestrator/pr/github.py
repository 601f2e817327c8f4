"""PR jobs: submit a PR's cells, find each cell's baseline, give a verdict, comment on GitHub.

Which run is a cell's baseline is ``orchestrator.pr.baselines``' rule; how a cell is compared
(interleaved A/B in one lease, else that run's results) and the verify re-run of a
suspected regression are ``orchestrator.pr.verify``'s. The statistics (Mann-Whitney +
bootstrap CI + minimum effect) are ``orchestrator.analysis``'s; the table is
``orchestrator.reports``'.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator.analysis.compare import CellComparison
from orchestrator.api.submit import RunMeta, submit_spec_text
from orchestrator.pr.verify import AB_BASIS, compare_pr_run
from orchestrator.reports.data import CellKey, RunData
from orchestrator.reports.markdown import cell_label, verdict_markdown
from orchestrator.reports.operator_diff import cell_diffs, operator_diff_markdown

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


def pr_verdict(s: Session, run_id: str, branch: str = "main", min_effect: float = 0.05) -> PrVerdict:
    """Compare a PR run's cells with their baselines (raises ``reports.data.RunNotFound``):
    in-lease A/B where the cell ran interleaved, else the newest baseline run; a suspected
    regression counts only when the automatic verify re-run confirms it (``orchestrator.pr.verify``)."""
    found = compare_pr_run(s, run_id, branch, min_effect)
    md = _markdown(found.candidate, found.comparisons, found.baseline_runs, branch)
    # which operators a slower/faster cell's change comes from (A/B profiling passes)
    md += operator_diff_markdown(cell_diffs(s, found.comparisons, found.baseline_runs), cell_label)
    return PrVerdict(run_id, md, found.comparisons, found.baseline_runs)


def _markdown(candidate: RunData, comparisons: list[CellComparison], baselines: dict[CellKey, str],
              branch: str) -> str:
    meta = candidate.run.meta
    title = f"PR #{meta['pr']}" if meta.get("pr") else f"run `{candidate.run.id}`"
    runs = sorted(set(baselines.values()))
    ab = sum(c.basis == AB_BASIS for c in comparisons)
    sources = ", ".join(f"`{r}`" for r in runs) if runs else (
        "none" if ab else f"none (no finalised `{branch}` results for these cells)")
    head = [MARKER, f"## benchfarm: {title} vs `{branch}`", "",
            f"Run `{candidate.run.id}` ({candidate.run.status}) · baseline runs: {sources}"
            + (f" · {ab} cell(s) measured interleaved A/B with the `{branch}` artifact on the same device "
               "in one lease" if ab else ""), ""]
    verify = (candidate.run.meta or {}).get("verify") or {}
    if verify.get("cells"):
        head += [f"Suspected regressions re-run once to verify: {', '.join(verify['cells'])}.", ""]
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
    if spec is not None:  # a local pte:<path> is read here, as this user, and stored by digest
        from orchestrator.export.artifacts import ArtifactStore
        from orchestrator.export.programs import localize_spec_text

        return localize_spec_text(spec.read_text(), str(spec), ArtifactStore()), str(spec)
    if model is None or not backends or not devices:
        raise ValueError("--model needs at least one --backend and one --device")
    return pte_spec_text(model, name or model.stem, backends, devices), str(model)

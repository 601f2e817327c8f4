"""What an agent's report must satisfy to be recorded as a result: its document keeps the
contract, names the job and attempt, its program's runtime is one the device accepts, and an
A/B block names the job's baseline artifact and carries a valid baseline document.

Split in two for the record path's write lock (``orchestrator.coordinator.record``): :func:`precheck`
does what needs no database row (schema checks, summaries: most of the CPU), before the lock;
:func:`checked` does the rest against the row read under it, in the order the checks always had
(a failure found ahead is raised where that order reaches it), so the outcome is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.engine import Row

from agents.harness.contract import ContractError, runtime_refusal, validate_result
from orchestrator.analysis import stability
from orchestrator.analysis.stats import Stats, summarize

T = TypeVar("T")


@dataclass(frozen=True)
class _Later(Generic[T]):
    """A value computed ahead, or what computing it raised: raised by :meth:`get`, where the
    checks in their order reach it (so computing ahead changes no outcome and no message)."""
    value: T | None = None
    error: Exception | None = None

    def get(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


def _later(compute: Callable[[], T]) -> _Later[T]:
    try:
        return _Later(compute())
    except Exception as exc:  # any: it is raised again where it would have been raised
        return _Later(error=exc)


@dataclass(frozen=True)
class _ABParts:
    """An A/B block's checks that need no row: its bounded copy and its baseline document's
    schema check and summary (``base`` None: the block has no baseline document)."""
    block: _Later[dict[str, Any]]
    base: _Later[dict[str, Any]] | None
    base_summary: _Later[Stats] | None


@dataclass(frozen=True)
class Prechecked:
    """The checks of an ``ok`` report that need no row, before the write lock: the result
    document's schema check (``doc``), its summary and stability, the A/B block's parts.
    Unset for other outcomes, and past a document that failed its check (nothing reads them)."""
    doc: _Later[dict[str, Any]] | None = None
    summary: _Later[tuple[Stats, stability.Stability | None]] | None = None
    ab: _Later[_ABParts | None] | None = None


def precheck(payload: dict[str, Any]) -> Prechecked:
    """Before the write lock: the checks of ``payload`` that need no row (:func:`checked` uses them)."""
    if payload.get("outcome") != "ok":
        return Prechecked()
    doc = _later(lambda: validate_result(payload.get("result")))
    if doc.error is not None:
        return Prechecked(doc)
    samples = doc.get()["latencies_ms"]
    return Prechecked(doc, _later(lambda: _summary_and_stability(samples)),
                      _later(lambda: _ab_parts(payload.get("ab"))))


def _summary_and_stability(samples: list[float]) -> tuple[Stats, stability.Stability | None]:
    st = _summary(samples)
    return st, stability.of_samples(samples, st)


def _summary(samples: list[float]) -> Stats:
    """The stored median/p10/p90/mean of a result: the same definition (and outlier policy) as every
    report, CSV and API figure of that name (``orchestrator.analysis.stats``)."""
    st = summarize(samples)
    if st is None:
        raise ContractError("no latency samples")
    return st


def checked(payload: dict[str, Any], pre: Prechecked, row: Row[*tuple[Any, ...]],
            attempt_id: str) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """The report's outcome once its document is checked: an ``ok`` whose document breaks the
    contract, or whose program's runtime the device refuses, becomes an infrastructure failure
    (and ``payload`` carries its category and message). Also the A/B block of an ok result."""
    outcome = payload["outcome"]
    doc: Any = payload.get("result")  # the harness's document, validated by precheck
    ab_block = None
    if outcome == "ok":
        try:
            assert pre.doc is not None  # prechecked: the outcome is ok
            pre.doc.get()
            if (doc["job_id"], doc["attempt_id"]) != (row.job_id, attempt_id):
                raise ContractError("result document names another job/attempt")
            assert pre.ab is not None  # prechecked: the document passed
            ab_block = _ab_block(payload.get("ab"), pre.ab.get(), row.job_id, attempt_id, row.baseline_artifact_key)
        except ContractError as exc:
            outcome, payload = "infra", dict(payload, category="bad_result", message=str(exc))
    if outcome in ("ok", "model") and isinstance(doc, dict):
        if refusal := runtime_refusal(doc, _exporter_executorch(row.info)):
            outcome, payload = "infra", dict(payload, category="runtime_mismatch", message=refusal)
    return outcome, payload, ab_block


def _exporter_executorch(art_info: dict[str, Any] | None) -> str | None:
    """The executorch release that exported the job's program (artifact meta), if recorded."""
    return ((art_info or {}).get("exporter") or {}).get("versions", {}).get("executorch")


def _ab_parts(ab: Any) -> _ABParts | None:
    """What :func:`_ab_block` checks without the row, computed ahead (None: no block to check)."""
    if not ab or not isinstance(ab, dict):
        return None
    block = _later(lambda: {"order": str(ab.get("order", ""))[:64], "rounds": list(ab.get("rounds") or [])[:64],
                            # the row's key: _ab_block uses the block only once the two are equal
                            "baseline_artifact_key": ab.get("baseline_artifact_key"),
                            "baseline_error": str(ab.get("baseline_error") or "")[:2000],
                            "adaptive": _adaptive_summary(ab.get("adaptive"))})
    if ab.get("baseline_result") is None:
        return _ABParts(block, None, None)
    base = _later(lambda: validate_result(ab["baseline_result"]))
    summary = _later(lambda: _summary(base.get()["latencies_ms"])) if base.error is None else None
    return _ABParts(block, base, summary)


def _ab_block(ab: dict[str, Any] | None, parts: _ABParts | None, job_id: str, attempt_id: str,
              baseline_key: str) -> dict[str, Any] | None:
    """The baseline arm of an interleaved A/B attempt, checked like the result itself
    (raises ``ContractError``): what the verdict compares the PR's samples with. ``parts``: its
    checks that need no row (:func:`_ab_parts`); here the ones against the job's row."""
    if not ab:
        return None
    if not isinstance(ab, dict) or ab.get("baseline_artifact_key") != baseline_key:
        raise ContractError("A/B block does not name this job's baseline artifact")
    assert parts is not None  # a dict block has its parts
    block = parts.block.get()
    if parts.base is None:
        return block
    base = parts.base.get()
    if (base["job_id"], base["attempt_id"]) != (job_id, attempt_id) or base["status"] != "ok":
        raise ContractError("A/B baseline document names another job/attempt or is not ok")
    assert parts.base_summary is not None  # computed for a document that passed
    st = parts.base_summary.get()
    return block | {"latencies_ms": base["latencies_ms"], "median_ms": st.median, "p10_ms": st.p10,
                    "p90_ms": st.p90, "load_time_ms": base["load_time_ms"],
                    "peak_memory_bytes": base["peak_memory_bytes"],
                    "energy_mj_per_inference": base.get("energy_mj_per_inference"),
                    "device_metrics": base.get("device_metrics"),  # schema-checked with the document
                    "simulated": bool(base["simulated"])}


def _adaptive_summary(raw: Any) -> dict[str, Any]:
    """The agent's account of its adaptive rounds (``agents.ab.RoundPlan.summary``), kept
    to known keys and bounded sizes: it is input from an agent, stored as is."""
    raw = raw if isinstance(raw, dict) else {}
    out: dict[str, Any] = {}
    for key in ("rounds_done", "device_s"):
        value = raw.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e9:
            out[key] = value
    for key in ("stop_reason", "agent_outcome", "agent_verdict"):
        if isinstance(raw.get(key), str):
            out[key] = raw[key][:64]
    return out

"""Load a run from the results store into plain cell records.

A *cell* is one (model, backend, device class, input resolution, batch size); its
repeats (``Job.repeat_index``) are pooled: every iteration of every repeat feeds the
statistics. Everything downstream (analysis, tables, formats) works on these records
and never touches the database.

A cell without results is still a cell: failed / blocked / queued jobs keep their
state and reason so every table shows them as a row, never as a missing row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.store import profiles
from orchestrator.store.models import Artifact, Job, Result, Run
from orchestrator.store.profiles import CellProfile

# Worst-first, so a cell's thermal state is the worst any repeat saw; "unknown" (the host
# driver cannot read it) counts as not reported.
THERMAL_ORDER = ("critical", "serious", "fair", "nominal")


class RunNotFound(LookupError):
    pass


class CellKey(NamedTuple):
    model: str
    backend: str
    device_class: str
    input_resolution: int
    batch_size: int

    def label(self) -> str:
        return f"{self.model}/{self.backend}/{self.device_class}@{self.input_resolution}x{self.batch_size}"

    @classmethod
    def of(cls, job: Any) -> CellKey:
        """The cell of anything with the five fields: a job row, a planned cell."""
        return cls(job.model, job.backend, job.device_class, job.input_resolution, job.batch_size)


@dataclass
class Cell:
    key: CellKey
    state: str  # ok | partial | failed | blocked | cancelled | queued | running
    reason: str = ""
    simulated: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    preprocess_ms: list[float] = field(default_factory=list)
    postprocess_ms: list[float] = field(default_factory=list)
    # Per repeat, so total latency can be summed per iteration only where stages align.
    stage_series: list[tuple[list[float], list[float], list[float]]] = field(default_factory=list)
    load_times_ms: list[float] = field(default_factory=list)
    peak_memory_bytes: int | None = None  # the harness's own figure
    energy_mj_per_inference: float | None = None
    # where the cell's energy came from: "dvt.energy" (the device's gauge) and/or "harness"
    energy_sources: list[str] = field(default_factory=list)
    # the device's own view of the harness process (DVT sysmontap), beside the harness's figure
    device_memory_bytes: int | None = None
    device_cpu_pct: float | None = None
    device_missing: str = ""  # why device figures are missing, when a repeat has none
    charging: bool | None = None  # the device charged over USB while it ran (battery current unusable)
    thermal_before: str | None = None
    thermal_after: str | None = None
    model_size_bytes: int | None = None
    params: int | None = None
    accuracy: float | None = None  # top-1 %, when the artifact's info supplies one
    max_abs_error: float | None = None
    top1_agrees: bool | None = None
    device_models: list[str] = field(default_factory=list)
    os_versions: list[str] = field(default_factory=list)
    chips: list[str] = field(default_factory=list)  # as the harness reports it: a host's CPU model
    repeats: int = 0
    repeats_ok: int = 0
    # the per-operator profile of the cell's first repeat that has one (a successful one first)
    profile: CellProfile | None = None

    @property
    def has_results(self) -> bool:
        return bool(self.latencies_ms)


@dataclass(frozen=True)
class RunInfo:
    id: str
    name: str
    trigger: str
    status: str
    created_at: datetime
    meta: dict[str, Any]


@dataclass
class RunData:
    run: RunInfo
    cells: list[Cell]

    @property
    def simulated(self) -> bool:
        return any(c.simulated for c in self.cells)

    def by_key(self) -> dict[CellKey, Cell]:
        return {c.key: c for c in self.cells}


def _worst(states: list[str]) -> str | None:
    present = [s for s in states if s in THERMAL_ORDER]
    return min(present, key=THERMAL_ORDER.index) if present else None


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _energy(result: Result) -> tuple[float | None, str]:
    """Energy per inference and its source: the device's energy gauge where it measured, else the
    harness's own figure."""
    doc = result.document or {}
    device = ((doc.get("device_metrics") or {}).get("energy") or {}).get("energy_mj_per_inference")
    if device is not None:
        return float(device), "dvt.energy"
    value = doc.get("energy_mj_per_inference")
    value = float(value) if value is not None else result.energy_mj
    return value, "harness" if value is not None else ""


def _device_figures(cell: Cell, doc: dict[str, Any]) -> None:
    dm = doc.get("device_metrics")
    if not isinstance(dm, dict):
        return
    mem = dm.get("memory") or {}
    if mem.get("peak_footprint_bytes") is not None:
        cell.device_memory_bytes = max(cell.device_memory_bytes or 0, int(mem["peak_footprint_bytes"]))
    if mem.get("mean_cpu_pct") is not None:
        cell.device_cpu_pct = max(cell.device_cpu_pct or 0.0, float(mem["mean_cpu_pct"]))
    missing = dm.get("missing") or []
    if missing and not cell.device_missing:
        cell.device_missing = "; ".join(f"{m.get('source')}: {m.get('reason')}" for m in missing)[:300]
    battery = dm.get("battery") or {}
    if "charging" in battery:
        cell.charging = bool(cell.charging) or bool(battery["charging"])


def _failure_state(jobs: list[Job], results: dict[str, Result]) -> tuple[str, str]:
    """State and reason of a cell none of whose repeats produced latencies."""
    for j in jobs:
        r = results.get(j.id)
        if r is not None and (r.document or {}).get("status") == "error":
            err = (r.document or {}).get("error") or {}
            return "failed", f"{err.get('category', 'error')}: {err.get('message', '')}".strip()
    # The most telling state wins: a failure explains the cell better than a pending repeat.
    for state in ("failed", "blocked", "cancelled"):
        for j in jobs:
            if j.state == state:
                return state, j.reason
    return jobs[0].state, jobs[0].reason


def _build_cell(key: CellKey, jobs: list[Job], results: dict[str, Result], art: Artifact | None) -> Cell:
    cell = Cell(key=key, state="ok", repeats=len(jobs))
    if art is not None:
        cell.model_size_bytes = art.size_bytes or None
        info = art.info or {}
        cell.params = info.get("params")
        cell.accuracy = info.get("accuracy")
    energies, before, after, errors, agrees = [], [], [], [], []
    for j in sorted(jobs, key=lambda j: j.repeat_index):
        r = results.get(j.id)
        doc = (r.document or {}) if r else {}
        if r is None or doc.get("status", "ok") != "ok" or not doc.get("latencies_ms"):
            continue
        cell.repeats_ok += 1
        cell.simulated = cell.simulated or bool(r.simulated)
        lat, pre, post = doc["latencies_ms"], doc.get("preprocess_ms") or [], doc.get("postprocess_ms") or []
        cell.latencies_ms += lat
        cell.preprocess_ms += pre
        cell.postprocess_ms += post
        cell.stage_series.append((lat, pre, post))
        cell.load_times_ms.append(r.load_time_ms)
        cell.peak_memory_bytes = max(cell.peak_memory_bytes or 0, r.peak_memory_bytes)
        energy, source = _energy(r)
        if energy is not None:
            energies.append(energy)
            if source not in cell.energy_sources:
                cell.energy_sources.append(source)
        _device_figures(cell, doc)
        before.append(doc.get("thermal_before", ""))
        after.append(doc.get("thermal_after", ""))
        out = doc.get("output") or {}
        if "max_abs_error" in out:
            errors.append(out["max_abs_error"])
        if "top1_agrees" in out:
            agrees.append(out["top1_agrees"])
        chip = (doc.get("device") or {}).get("chip")
        for lst, value in ((cell.device_models, r.device_model), (cell.os_versions, r.os_version),
                           (cell.chips, chip)):
            if value and value not in lst:
                lst.append(value)
    cell.energy_mj_per_inference = _median(energies)
    cell.thermal_before, cell.thermal_after = _worst(before), _worst(after)
    cell.max_abs_error = max(errors) if errors else None
    cell.top1_agrees = all(agrees) if agrees else None
    if cell.repeats_ok == 0:
        cell.state, cell.reason = _failure_state(jobs, results)
    elif cell.repeats_ok < cell.repeats:
        failed = [j for j in jobs if j.id not in results]
        cell.state = "partial"
        cell.reason = f"{cell.repeats_ok}/{cell.repeats} repeats" + (
            f"; {failed[0].state}: {failed[0].reason}" if failed and failed[0].reason else "")
    return cell


def load_run(session: Session, run_id: str) -> RunData:
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id!r} in the results store")
    jobs = session.scalars(select(Job).where(Job.run_id == run_id)).all()
    results = {r.job_id: r for r in session.scalars(select(Result).join(Job).where(Job.run_id == run_id))}
    keys = {j.artifact_key for j in jobs if j.artifact_key}
    arts = {a.key: a for a in session.scalars(select(Artifact).where(Artifact.key.in_(keys)))} if keys else {}
    groups: dict[CellKey, list[Job]] = defaultdict(list)
    for j in jobs:
        groups[CellKey.of(j)].append(j)
    cells = [
        _build_cell(key, group, results, next((arts[j.artifact_key] for j in group if j.artifact_key in arts),
                                              None))
        for key, group in sorted(groups.items())
    ]
    _attach_profiles(session, groups, cells)
    info = RunInfo(run.id, run.name, run.trigger, run.status, run.created_at, dict(run.meta or {}))
    return RunData(info, cells)


def _attach_profiles(session: Session, groups: dict[CellKey, list[Job]], cells: list[Cell]) -> None:
    found = profiles.for_jobs(session, [j.id for group in groups.values() for j in group])
    for cell in cells:
        mine = [found[j.id] for j in sorted(groups[cell.key], key=lambda j: j.repeat_index) if j.id in found]
        cell.profile = next((p for p in mine if p.status == "ok"), mine[0] if mine else None)


def nightly_run_ids(session: Session, limit: int = 30, before: datetime | None = None) -> list[str]:
    """Ids of the most recent nightly runs, oldest first (the order trends are plotted in)."""
    q = select(Run.id).where(Run.trigger == "nightly")
    if before is not None:
        q = q.where(Run.created_at <= before)
    ids = session.scalars(q.order_by(Run.created_at.desc()).limit(limit)).all()
    return list(reversed(ids))


def load_nightly_history(session: Session, limit: int = 30, before: datetime | None = None) -> list[RunData]:
    return [load_run(session, rid) for rid in nightly_run_ids(session, limit, before)]


def recent_runs(session: Session, limit: int = 50) -> list[Run]:
    return list(session.scalars(select(Run).order_by(Run.created_at.desc()).limit(limit)).all())


def latest_run_per_class(session: Session) -> dict[str, str]:
    """Device class -> id of the newest run that has jobs for it (the dashboard's matrix)."""
    rows = session.execute(
        select(Job.device_class, Run.id).join(Run, Run.id == Job.run_id).order_by(Run.created_at.desc())
    ).all()
    latest: dict[str, str] = {}
    for cls, run_id in rows:
        latest.setdefault(cls, run_id)
    return latest

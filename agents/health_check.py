"""The golden health check: a tiny model with a known output, run on one device by its own worker.

A device quarantined after repeated infrastructure failures comes back by passing this
check (or by ``benchfarm devices release``); a device that fails it is quarantined. The
check goes through the same driver path as a benchmark — health reading, lease, prepare,
run, ``parse_result``, cleanup — with the zoo's ``tiny_cnn`` at 64x64, lowered for a backend
the device's class runs (XNNPACK first, which every class does, then CoreML; see
``orchestrator/export/backends.yaml``).

Verdicts:
- ``passed``: a valid ``ok`` result document for this check's lease, and, when the result is
  real (not simulated), its output matches the golden eager fp32 output within tolerance
  (:func:`orchestrator.export.pipeline.compare_to_golden`). Virtual devices produce simulated
  numbers and no output: their output check is recorded as skipped, never as matched.
- ``failed``: the driver failed (harness crash, install, timeout...), the result document was
  invalid or reported an error, or the output did not match. The device is quarantined.
- ``inconclusive``: the check could not judge the device — it was leased to a job, gated
  (hot, low battery), in maintenance, or the golden artifact was unavailable, or the agent
  itself failed. Nothing about the device changes.

The golden artifact is exported by the check itself through the export pipeline, on the
first check that misses it: the store is content-addressed and the Redis export lock makes
concurrent checks export it once (about 20 s, once per exporter version); every later check
finds it with one stat. So the three schedulers (runner after quarantine, coordinator
periodically, the CLI on demand) only send a device id, and no coordinator has to export
before it may schedule. The export happens before the lease is taken: a device is never
leased while a model is being lowered.

Lease: :meth:`Fleet.acquire_for_health_check` leases an available *or quarantined* device
(atomically, refused while any lease is held, so a check never overlaps a job), and
:meth:`Fleet.finish_health_check` releases it and applies the verdict in one Redis script:
passed on a quarantined device = available again with the failure counter reset (event
``available`` / ``health_check passed``), failed = quarantined (event ``quarantined`` /
``health_check failed: <why>``). When to check is ``agents.health_schedule`` (rechecks)
and ``orchestrator.scheduling.health`` (periodic).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from agents import health_schedule as schedule
from agents.harness.contract import ContractError, validate_job
from agents.protocols import DriverError
from agents.runner import DeviceContext, LeaseHeartbeat, current, launch
from agents.timeline import Timeline
from device_inventory.fleet import Lease, LeaseRefused
from orchestrator import config
from orchestrator.celery_app import app
from orchestrator.export.artifacts import ArtifactError, ArtifactStore, StoredArtifact
from orchestrator.export.registry import Backend, registry
from orchestrator.observability import metrics

log = logging.getLogger("benchfarm.health_check")

GOLDEN_MODEL = "tiny_cnn"
GOLDEN_RESOLUTION = 64
PREFERRED_BACKENDS = ("xnnpack", "coreml")
WARMUP, ITERATIONS, TIMEOUT_S = 1, 5, 60.0
# XNNPACK fp32 matches eager to ~1e-6 on tiny_cnn; fp16 backends (CoreML) to ~1e-2. The
# relative part scales with the golden logits, so a larger model would not need new numbers.
ABS_TOLERANCE = {"fp32": 1e-3, "fp16": 5e-2, "int8": 0.25}
REL_TOLERANCE = 0.01
OUTPUT_SKIPPED_SIMULATED = "skipped: simulated result (virtual device), its output is not checked"


class NoGoldenBackend(RuntimeError):
    """No backend both runs on the device's class and can be exported here."""


@dataclass
class CheckResult:
    check_id: str
    device_id: str
    device_class: str
    trigger: str
    verdict: str = "inconclusive"  # passed | failed | inconclusive
    detail: str = ""
    output_check: str = "not run"  # matched | mismatched: ... | skipped: ... | missing | not run
    transition: str = "unchanged"  # released | quarantined | unchanged | lease_lost
    backend: str = ""
    artifact_key: str = ""
    simulated: bool | None = None
    comparison: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0
    duration_s: float = 0.0

    def as_record(self) -> dict[str, Any]:
        return {k: ("" if v is None else v) for k, v in asdict(self).items()}


def golden_backend(device_class: str) -> Backend:
    reg = registry()
    here = config.exporter_platform()
    candidates = [reg.resolve(n) for n in PREFERRED_BACKENDS] + list(reg.backends.values())
    for backend in candidates:
        if backend.runs_on_class(device_class) and backend.can_export_on(here):
            return backend
    raise NoGoldenBackend(f"no backend runs on {device_class} and exports on {here}")


def ensure_golden_artifact(store: ArtifactStore, backend: Backend, redis_client: Any) -> StoredArtifact:
    """The golden program for ``backend``, exported on the first call (see the module docstring)."""
    from orchestrator.export.pipeline import ExportRequest, export_artifact

    req = ExportRequest(model=GOLDEN_MODEL, source=f"zoo:{GOLDEN_MODEL}", backend=backend.name,
                        input_resolution=GOLDEN_RESOLUTION)
    artifact, hit = export_artifact(req, store, redis_client=redis_client)
    metrics.EXPORT_CACHE.labels("hit" if hit else "miss").inc()
    return artifact


def golden_job(check_id: str, token: int, artifact: StoredArtifact, backend: Backend) -> dict[str, Any]:
    from orchestrator.export.request import GOLDEN_SEED

    return validate_job({
        "schema_version": 1, "job_id": "health-check", "attempt_id": check_id, "attempt_token": token,
        "model_file": f"health-{GOLDEN_MODEL}-{backend.name}-{artifact.key[:8]}.pte",
        "model_sha256": artifact.meta["file_sha256"], "backend": backend.name, "runtime": backend.runtime,
        "compute_units": "all", "input_shape": [1, 3, GOLDEN_RESOLUTION, GOLDEN_RESOLUTION],
        "input_resolution": GOLDEN_RESOLUTION, "batch_size": 1, "warmup": WARMUP, "iterations": ITERATIONS,
        "timeout_s": TIMEOUT_S, "golden_input": {"kind": "seeded-uniform", "seed": GOLDEN_SEED},
    })


def judge_output(store: ArtifactStore, artifact: StoredArtifact, backend: Backend,
                 doc: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    """(passes, output_check, comparison) for an ``ok`` result document."""
    from orchestrator.export.pipeline import compare_to_golden

    if doc["simulated"]:
        return True, OUTPUT_SKIPPED_SIMULATED, {}
    output = doc.get("output")
    if not output:
        return False, "missing: a real result without an output block cannot be checked", {}
    comparison = compare_to_golden(store, artifact.key, output)
    golden_head = store.golden(artifact.key)["values"][: max(comparison["compared_values"], 1)]
    tolerance = ABS_TOLERANCE[backend.lowering["precision"]] + REL_TOLERANCE * max(abs(v) for v in golden_head)
    comparison["tolerance"] = tolerance
    error = comparison["max_abs_error"]
    if not comparison["shape_matches"] or error is None:
        return False, f"mismatched: output shape {output.get('shape')} is not the golden shape", comparison
    if error > tolerance or not comparison["top1_agrees"]:
        return False, (f"mismatched: max |error| {error:.3g} (tolerance {tolerance:.3g}), top-1 "
                       f"{output.get('top1')} vs golden {comparison['golden_top1']}"), comparison
    return True, f"matched: max |error| {error:.3g} <= {tolerance:.3g}", comparison


def run_check(ctx: DeviceContext, request: dict[str, Any], store: ArtifactStore | None = None) -> CheckResult:
    """Run one golden check on ``ctx``'s device and apply its verdict to the fleet."""
    dev, store = ctx.device, store or ctx.store
    result = CheckResult(request["check_id"], dev.id, dev.device_class, request.get("trigger", "on_demand"),
                         started_at=time.time())
    timeline = Timeline()
    try:
        _run(ctx, store, result, timeline)
    finally:
        result.timeline = timeline.steps
        result.finished_at = time.time()
        result.duration_s = round(result.finished_at - result.started_at, 3)
    return result


def _run(ctx: DeviceContext, store: ArtifactStore, result: CheckResult, timeline: Timeline) -> None:
    dev = ctx.device
    state = ctx.fleet.device(dev.id).get("state", "available")
    if state not in ("available", "quarantined"):
        result.detail = f"device is {state}"
        return
    try:
        backend = golden_backend(dev.device_class)
        result.backend = backend.name
        with timeline.step("golden_artifact", backend=backend.name):
            artifact = ensure_golden_artifact(store, backend, ctx.fleet.r)
        result.artifact_key = artifact.key
    except Exception as exc:  # our side (no exporter, store unreadable): says nothing about the device
        log.warning("health check %s: golden artifact unavailable", result.check_id, exc_info=True)
        result.detail = f"golden artifact unavailable: {type(exc).__name__}: {exc}"
        return
    with timeline.step("health"):
        health = ctx.driver.health(dev)
    if not (health.ok and health.action == "run"):
        result.detail = f"device gated: {'; '.join(health.problems) or health.action}"
        return
    try:
        lease, _ = ctx.fleet.acquire_for_health_check(dev.id, result.check_id, ctx.lease_ttl)
    except LeaseRefused as exc:
        result.detail = f"device not leasable: {exc}"
        return
    _benchmark_under_lease(ctx, store, result, timeline, lease, artifact, backend)


def _benchmark_under_lease(ctx: DeviceContext, store: ArtifactStore, result: CheckResult, timeline: Timeline,
                           lease: Lease, artifact: StoredArtifact, backend: Backend) -> None:
    keeper = LeaseHeartbeat(ctx, result.check_id)  # a check is never cancelled
    keeper.start()
    try:
        if hasattr(ctx.driver, "timeline"):
            ctx.driver.timeline = timeline
        job = golden_job(result.check_id, lease.token, artifact, backend)
        doc = launch(ctx, ctx.device, job, artifact.key, timeline, store)  # the same path as a benchmark
        result.simulated = doc["simulated"]
        if doc["status"] != "ok":
            result.verdict = "failed"
            result.detail = f"harness reported {doc['error']['category']}: {doc['error']['message'][:300]}"
        else:
            passes, result.output_check, result.comparison = judge_output(store, artifact, backend, doc)
            result.verdict = "passed" if passes else "failed"
            result.detail = "golden benchmark ok" if passes else f"output {result.output_check}"
    except DriverError as exc:
        result.verdict, result.detail = "failed", str(exc)
    except ContractError as exc:
        result.verdict, result.detail = "failed", f"bad result document: {exc}"
    except ArtifactError as exc:
        result.verdict, result.detail = "inconclusive", f"golden artifact unreadable: {exc}"
    except Exception as exc:  # the agent's own bug must not quarantine a device
        log.exception("health check %s crashed in the agent", result.check_id)
        result.verdict, result.detail = "inconclusive", f"agent error: {type(exc).__name__}: {exc}"
    finally:
        keeper.stopped.set()
        reason = f"health_check {result.verdict}" + (f": {result.detail}"[:300] if result.verdict != "passed" else "")
        result.transition = ctx.fleet.finish_health_check(lease, result.verdict, reason)


def execute(request: dict[str, Any]) -> CheckResult | None:
    """The ``benchfarm.health_check`` task body: check, record, and schedule the next recheck
    while the device stays quarantined."""
    ctx = current()
    dev = ctx.device
    if request.get("device_id") != dev.id:  # only this device's worker consumes its queue
        log.warning("health check %s is for %s, this worker owns %s: dropped", request.get("check_id"),
                    request.get("device_id"), dev.id)
        return None
    if request.get("trigger") == "recheck":
        schedule.recheck_started(ctx.fleet, request)
    result = run_check(ctx, request)
    metrics.HEALTH_CHECKS.labels(dev.device_class, result.verdict).inc()
    ctx.fleet.save_health_check(result.check_id, result.as_record())
    log_at = log.info if result.verdict == "passed" else log.warning
    log_at("health check %s on %s (%s): %s, %s [%s; output %s; %.1f s]", result.check_id, dev.id, result.trigger,
           result.verdict, result.transition, result.detail, result.output_check, result.duration_s)
    if result.verdict != "passed" and ctx.fleet.device(dev.id).get("state") == "quarantined":
        recheck = int(request.get("recheck", 0)) + 1 if request.get("trigger") == "recheck" else 1
        schedule.schedule_recheck(ctx.fleet, app, dev.id, recheck)
    return result

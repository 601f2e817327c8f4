"""One attempt on one device: health gate -> lease -> prepare -> run -> validate -> report.

Runs inside a device worker process (``agents.device_worker``), which owns exactly one
device and consumes its class's queue with a solo pool: a device pulls work only when
it is free, so a busy device never sits on a message another device could run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import tenacity

from agents import ab, conditions, device_metrics, etdumps
from agents.harness.contract import ContractError, parse_result, validate_job
from agents.health import THERMAL_ORDER
from agents.health_schedule import schedule_recheck
from agents.protocols import DeviceInfo, Driver, DriverError
from agents.timeline import Timeline
from device_inventory.fleet import Fleet, LeaseRefused
from orchestrator.celery_app import COORDINATOR_QUEUE, app, args_summary, device_queue
from orchestrator.export.artifacts import ArtifactError, ArtifactStore
from orchestrator.observability import metrics
from orchestrator.spec.matrix import labels_match, os_matches

log = logging.getLogger("benchfarm.agent")

# result categories that are the harness's fault, not the model's: retried elsewhere
INFRA_RESULT_CATEGORIES = {"timeout", "harness_crash", "bad_job", "other"}
QUARANTINE_AFTER = 3
# a message bounced by a device that cannot take it (gated, selector mismatch) waits
# this long before it is offered again, so the bouncing device does not spin on it
BOUNCE_DELAY_S = 3
MAX_BOUNCES = 20
# a device that already failed this job hands a retry back this many times, so another
# device of the class gets it first; with no other device free it then runs it itself
AVOID_BOUNCES = 2


@dataclass
class DeviceContext:
    driver: Driver
    device: DeviceInfo
    fleet: Fleet
    store: ArtifactStore
    lease_ttl: float = 30.0
    heartbeat_every: float = 5.0
    cool_down_max_s: float = 120.0
    cool_down_poll_s: float = 5.0


_ctx: DeviceContext | None = None


def install(ctx: DeviceContext) -> None:
    global _ctx
    _ctx = ctx


def current() -> DeviceContext:
    if _ctx is None:
        raise RuntimeError("this worker has no device: start it with `benchfarm agent`")
    return _ctx


def _send(task: str, payload: dict[str, Any], patience_s: float = 300.0) -> None:
    """Publish to the coordinator, riding out a broker restart: a report is the only copy
    of a result, so it is retried with backoff instead of being given up at once."""
    deadline = time.monotonic() + patience_s
    delay = 0.5
    while True:
        try:
            app.send_task(task, args=[payload], queue=COORDINATOR_QUEUE, priority=0,
                          argsrepr=args_summary([payload]))
            return
        except Exception as exc:  # kombu raises OperationalError / ConnectionError variants
            if time.monotonic() + delay > deadline:
                raise
            log.warning("cannot publish %s yet (%s); retrying in %.1f s", task, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 15.0)


def _retrying(what: str, fn: Any, patience_s: float = 120.0) -> Any:
    """Run a Redis operation, retrying through a short Redis outage (0.5 s doubling to 15 s)."""
    def warn(state: tenacity.RetryCallState) -> None:
        log.warning("%s: %s; retrying in %.1f s", what, state.outcome.exception() if state.outcome else "",
                    state.upcoming_sleep)

    return tenacity.Retrying(retry=tenacity.retry_if_exception_type(redis.RedisError),
                             wait=tenacity.wait_exponential(multiplier=0.5, min=0.5, max=15.0),
                             stop=tenacity.stop_after_delay(patience_s), before_sleep=warn, reraise=True)(fn)


def _bounce(payload: dict[str, Any], why: str) -> None:
    """Give the message back to the class queue for another device."""
    bounces = int(payload.get("bounces", 0)) + 1
    if bounces > MAX_BOUNCES:
        _send("benchfarm.record_attempt", {"attempt_id": payload["attempt_id"], "job_id": payload["job_id"],
                                           "outcome": "infra", "category": "unhealthy",
                                           "message": f"no device could take the job: {why}"})
        return
    log.info("bouncing attempt %s: %s", payload["attempt_id"], why)
    app.send_task("benchfarm.run_job", args=[dict(payload, bounces=bounces)],
                  queue=device_queue(payload["device_class"]), countdown=BOUNCE_DELAY_S)


def job_document(payload: dict[str, Any], token: int) -> dict[str, Any]:
    profile = {"profile": payload["profile"]} if payload.get("profile") else {}
    if payload.get("min_duration_s"):  # the run rule's minimum duration (orchestrator.spec.run_rules)
        profile["min_duration_s"] = payload["min_duration_s"]
    return validate_job({**profile,
        "schema_version": 1, "job_id": payload["job_id"], "attempt_id": payload["attempt_id"],
        "attempt_token": token, "model_file": payload["model_file"], "model_sha256": payload["model_sha256"],
        "backend": payload["backend"], "runtime": payload["runtime"], "compute_units": payload["compute_units"],
        "input_shape": payload["input_shape"], "input_resolution": payload["input_resolution"],
        "batch_size": payload["batch_size"], "warmup": payload["warmup"], "iterations": payload["iterations"],
        "timeout_s": payload["timeout_s"],
        "golden_input": {"kind": "seeded-uniform", "seed": payload["golden_seed"]},
    })


class LeaseHeartbeat(threading.Thread):
    """Keeps the lease alive while the device works; with ``on_cancel``, also notices a
    cancelled attempt (a health check has nothing to cancel)."""

    def __init__(self, ctx: DeviceContext, attempt_id: str, on_cancel: Any = None):
        super().__init__(daemon=True, name="lease-heartbeat")
        self.ctx, self.attempt_id, self.on_cancel = ctx, attempt_id, on_cancel
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.ctx.heartbeat_every):
            try:
                self.ctx.fleet.heartbeat(self.ctx.device.id, self.ctx.lease_ttl, lease_ttl=self.ctx.lease_ttl)
                if self.on_cancel and self.ctx.fleet.attempt_state(self.attempt_id) == "cancelled":
                    self.on_cancel()
                    return
            except Exception:  # Redis blip: the lease may expire, and fencing handles that
                log.warning("lease heartbeat failed for %s", self.ctx.device.id, exc_info=True)


def execute(payload: dict[str, Any]) -> None:
    """Run one attempt. Whatever goes wrong before the lease is taken, the message is
    handed back to the queue (bounced), never dropped: Celery acknowledges a task that
    raised, so an exception escaping here would lose the job."""
    try:
        _execute(payload)
    except Exception as exc:
        if current().fleet.attempt_state(payload["attempt_id"]) == "dispatched":
            log.exception("attempt %s failed before its lease: bouncing it", payload["attempt_id"])
            _bounce(payload, f"{type(exc).__name__}: {exc}")
            time.sleep(BOUNCE_DELAY_S)
        else:
            raise


def _execute(payload: dict[str, Any]) -> None:
    ctx = current()
    dev = ctx.device
    timeline = Timeline()
    record = ctx.fleet.device(dev.id)
    state = record.get("state", "available")
    if state in ("quarantined", "maintenance", "offline"):
        _bounce(payload, f"device {dev.id} is {state}")
        time.sleep(BOUNCE_DELAY_S)
        return
    if not os_matches(payload.get("device_selector", ""), dev.os_version):
        _bounce(payload, f"{dev.id} runs {dev.os} {dev.os_version}, the job asks for {payload['device_selector']}")
        time.sleep(BOUNCE_DELAY_S)
        return
    if not labels_match(payload.get("device_selector", ""), dev.extra.get("labels", [])):
        _bounce(payload, f"{dev.id} has labels {dev.extra.get('labels', [])}, the job asks for "
                         f"{payload['device_selector']}")
        time.sleep(BOUNCE_DELAY_S)
        return
    if dev.id in payload.get("avoid_devices", []) and int(payload.get("bounces", 0)) < AVOID_BOUNCES:
        _bounce(payload, f"{dev.id} already failed this job: offering the retry to another device")
        time.sleep(BOUNCE_DELAY_S)
        return
    gated = _gate(ctx, timeline, payload.get("cool_down"), record)
    if gated:
        _bounce(payload, f"device {dev.id} gated: {gated}")
        time.sleep(BOUNCE_DELAY_S)
        return
    try:
        lease = ctx.fleet.acquire(dev.id, payload["attempt_id"], payload["job_id"], ctx.lease_ttl)
    except LeaseRefused as exc:
        attempt_state = ctx.fleet.attempt_state(payload["attempt_id"])
        if attempt_state != "dispatched":
            # a redelivered copy, a fenced or a cancelled attempt: nothing to run
            log.info("dropping attempt %s (%s)", payload["attempt_id"], attempt_state)
            return
        _bounce(payload, str(exc))
        return
    # No "started" message: the lease's own event tells the coordinator (device_history copies it
    # every COPY_EVERY_S and marks the attempt running), so the coordinator handles one message per
    # job, not two (handling a Celery message costs it more CPU than the two UPDATEs this one carried).
    # The report says when the lease was taken, in case it is recorded before the event is copied.
    leased_at = time.time()
    report: dict[str, Any] = {"attempt_id": lease.attempt_id, "job_id": lease.job_id, "device_id": dev.id,
                              "host": dev.host, "lease_token": lease.token, "started_at": leased_at}
    heartbeat = LeaseHeartbeat(ctx, lease.attempt_id, on_cancel=lambda: _abort(ctx))
    heartbeat.start()
    try:
        if hasattr(ctx.driver, "timeline"):
            ctx.driver.timeline = timeline  # the driver records its own steps (push, launch, pull...)
        plan = ab.RoundPlan(payload, job_document(payload, lease.token))
        docs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        baseline_error = ""
        failed: dict[str, Any] | None = None  # the job's own program reported an error
        ctx.fleet.mark_busy(lease)
        for arm_run in plan:
            if arm_run.arm == "B" and baseline_error:
                continue  # the baseline failed once: finish the PR's own rounds without it
            doc = launch(ctx, dev, arm_run.job, arm_run.artifact_key, timeline, arm=arm_run.arm)
            if doc["status"] != "ok" and arm_run.arm == "A":
                failed = doc
                break
            if doc["status"] != "ok":
                baseline_error = f"{doc['error']['category']}: {doc['error']['message']}"
                plan.record("B", None)
                continue
            docs[arm_run.arm].append(doc)
            plan.record(arm_run.arm, doc)
        if failed is not None:
            report.update(_classify(failed))
        else:
            report.update(_classify(ab.merge_documents(docs["A"])))
            if "ab" in payload:
                report["ab"] = {"order": "".join(r["arm"] for r in plan.rounds), "rounds": plan.rounds,
                                "baseline_artifact_key": payload["ab"]["baseline"]["artifact_key"],
                                "baseline_result": ab.merge_documents(docs["B"]) if docs["B"] else None,
                                "baseline_error": baseline_error, "adaptive": plan.summary()}
    except DriverError as exc:
        report.update(outcome="infra", category=exc.category, message=str(exc))
    except ContractError as exc:
        report.update(outcome="infra", category="bad_result", message=str(exc))
    except ArtifactError as exc:
        report.update(outcome="infra", category="transfer_failed", message=str(exc))
    except Exception as exc:  # anything else is our bug; the job is retried elsewhere
        log.exception("attempt %s crashed in the agent", lease.attempt_id)
        report.update(outcome="infra", category="other", message=f"{type(exc).__name__}: {exc}")
    finally:
        heartbeat.stopped.set()
        still_ours = _retrying("releasing the lease", lambda: ctx.fleet.release(lease, "done"))
        infra = report.get("outcome") == "infra"
        if _retrying("recording the outcome", lambda: ctx.fleet.record_outcome(dev.id, infra, QUARANTINE_AFTER)):
            metrics.QUARANTINES.labels(dev.device_class).inc()
            log.error("device %s quarantined after %d consecutive infrastructure failures",
                      dev.id, QUARANTINE_AFTER)
            schedule_recheck(ctx.fleet, app, dev.id)  # a passing golden health check returns it
    report["timeline"] = timeline.steps
    report["lease_valid_at_end"] = still_ours
    metrics.observe_attempt(dev.device_class, report)
    _send("benchfarm.record_attempt", report)


def launch(ctx: DeviceContext, dev: DeviceInfo, job: dict[str, Any], artifact_key: str, timeline: Timeline,
           store: ArtifactStore | None = None, on_run: Callable[[], None] | None = None,
           **step_args: Any) -> dict[str, Any]:
    """One harness launch under a lease the caller holds: fetch the artifact (verified),
    prepare, run, validate the document against the job, clean up. Shared by benchmark
    attempts (each A/B arm, ``step_args`` naming it) and golden health checks. ``on_run``: called
    as the device is handed the job."""
    with timeline.step("fetch_artifact", key=artifact_key, **step_args):
        model_path = (store or ctx.store).get(artifact_key).path
    try:
        with timeline.step("prepare", **step_args):
            ctx.driver.prepare(dev, job, model_path)
        with timeline.step("run", **step_args):
            if on_run is not None:
                on_run()
            raw = ctx.driver.run(dev, job)
        with timeline.step("validate", **step_args):
            doc = parse_result(raw)
            if (doc["job_id"], doc["attempt_id"], doc["attempt_token"]) != (
                    job["job_id"], job["attempt_id"], job["attempt_token"]):
                raise ContractError("result document belongs to another job/attempt/lease")
            doc = device_metrics.attach(ctx.driver, dev, job, doc)  # the device's figures, beside the harness's
        etdumps.keep(ctx.driver, dev, job, doc, arm=step_args.get("arm", "A"))
        return doc
    finally:
        try:
            with timeline.step("cleanup", **step_args):
                ctx.driver.cleanup(dev, job)
        except Exception:
            log.warning("cleanup failed on %s", dev.id, exc_info=True)


def _cool_enough(thermal: str, target: str) -> bool:
    # "unknown" (the host driver cannot read it) never waits: there is nothing to wait for
    order = THERMAL_ORDER
    return thermal not in order or target not in order or order.index(thermal) <= order.index(target)


def _gate(ctx: DeviceContext, timeline: Timeline, cool_down: dict[str, Any] | None = None,
          known: dict[str, str] | None = None) -> str:
    """Follow the driver's health verdict: run, wait for a bounded cool-down, or give the
    job away. Returns '' when the device may run, else the reason it may not.

    ``cool_down`` is the run rule's (``{"to": "nominal", "max_s": 300}``): a device the driver
    would let run waits, up to ``max_s``, until its thermal state is at or below ``to``, so a
    cell does not inherit the previous one's heat; past ``max_s`` it runs anyway (its result's
    ``thermal_before`` says how warm it was) rather than bouncing a job no device may cool for.
    ``known``: the device's record as the caller just read it: the first reading neither asks for the
    state again nor rewrites a status that has not changed (the agent's heartbeat keeps the device alive)."""
    deadline = time.monotonic() + ctx.cool_down_max_s
    rule = cool_down or {}
    rule_deadline = time.monotonic() + float(rule.get("max_s") or 0.0)
    while True:
        with timeline.step("health"):
            health = ctx.driver.health(ctx.device)
        condition = conditions.apply(ctx.fleet, ctx.device.id, health, known.get("state", "available")
                                     if known is not None else None)
        if condition:
            return "; ".join(health.problems)
        status = {"battery": health.battery_level if health.battery_level is not None else "",
                  "thermal": health.thermal_state, "charging": health.charging if health.charging is not None else ""}
        if known is None or any(known.get(k) != str(v) for k, v in status.items()):
            ctx.fleet.heartbeat(ctx.device.id, ctx.lease_ttl, status=status)
        known = None  # a later reading (after a cool-down) asks again
        if health.ok and health.action == "run":
            target = str(rule.get("to", ""))
            if _cool_enough(health.thermal_state, target) or time.monotonic() + ctx.cool_down_poll_s > rule_deadline:
                return ""
            with timeline.step("cool_down", thermal=health.thermal_state, rule=target):
                time.sleep(ctx.cool_down_poll_s)
            continue
        if health.action != "cool_down" or time.monotonic() + ctx.cool_down_poll_s > deadline:
            return "; ".join(health.problems) or health.action
        with timeline.step("cool_down", thermal=health.thermal_state):
            time.sleep(ctx.cool_down_poll_s)


def _classify(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["status"] == "ok":
        return {"outcome": "ok", "result": doc}
    err = doc["error"]
    kind = "infra" if err["category"] in INFRA_RESULT_CATEGORIES else "model"
    return {"outcome": kind, "category": err["category"], "message": err["message"], "result": doc}


def _abort(ctx: DeviceContext) -> None:
    abort = getattr(ctx.driver, "abort", None)
    if abort is not None:
        abort(ctx.device)

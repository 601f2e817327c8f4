"""Submit a run: plan its jobs, find or request their artifacts, dispatch what is ready.

An uploaded program (``pte:sha256:``) is keyed here by its digest and stored as the artifact
of each backend from the store's own ``programs/`` area (no path from a spec is ever read);
a torch model is keyed by the exporter that builds it (its fingerprint reads the model's
code, which the coordinator never does): its jobs wait in ``exporting`` under their request
key until ``exports.export_done`` names the artifact — unless the exporters vouch for the key
they gave a zoo model before (``exports.remembered_artifact``): then its jobs dispatch at once.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator import celery_app as capp
from orchestrator.coordinator import events
from orchestrator.coordinator.dispatch import dispatch_waiting
from orchestrator.coordinator.exports import (
    block_jobs,
    export_route,
    jobs_for_request,
    mark_artifact_ready,
    remembered_artifact,
)
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Message, Outbox, new_id
from orchestrator.coordinator.planning import plan
from orchestrator.export.artifacts import ArtifactStore
from orchestrator.export.programs import has_program
from orchestrator.export.recipe import artifact_key, keyed_without_exporter, request_key
from orchestrator.export.request import ExportRequest
from orchestrator.export.sources import BadSource, Source
from orchestrator.spec import run_rules
from orchestrator.spec.matrix import MatrixSpec
from orchestrator.spec.yamlpos import SpecError
from orchestrator.store import audit
from orchestrator.store.audit import Actor
from orchestrator.store.db import session as db_session
from orchestrator.store.models import Artifact, Job, Run, utcnow
from orchestrator.store.states import JOB_TERMINAL, check_job_transition


def submit(spec: MatrixSpec, spec_text: str, fleet: Fleet, *, source: str = "", trigger: str = "manual",
           requested_by: str = "", meta: dict[str, Any] | None = None,
           store: ArtifactStore | None = None, actor: Actor | None = None) -> tuple[str, Outbox]:
    """Create the run and its jobs; return the run id and the messages to send after commit.

    ``actor`` (an API token's): the run's owner, and the audit row written in this transaction."""
    if trigger not in capp.PRIORITY:
        raise ValueError(f"unknown trigger {trigger!r} (known: {', '.join(capp.PRIORITY)})")
    store = store or ArtifactStore()
    the_plan = plan(spec)
    _store_programs(spec, store)
    live = fleet.exporters.live()
    alive = set(live)
    outbox = Outbox()
    priority = capp.PRIORITY[trigger]
    run_id = new_id()
    rule = run_rules.resolved(spec.parameters.run_rules, trigger)
    iterations = run_rules.iterations(spec.parameters.iterations, run_rules.of_run(rule))
    if rule["min_duration_s"] >= spec.parameters.timeout_s:  # every job would time out
        # a spec problem (422 in the API, exit 2 in the CLI), found only once the trigger is known
        raise SpecError([f"{source or 'spec'}: parameters.run_rules: a {trigger} run measures each cell for "
                         f"at least {rule['min_duration_s']:g} s ({rule['source']} rule), which does not fit "
                         f"in parameters.timeout_s ({spec.parameters.timeout_s} s)"])
    with db_session() as s:
        # clipped to their columns: provenance, not input the spec validation saw
        run = Run(id=run_id, name=spec.name, trigger=trigger, requested_by=requested_by[:200], priority=priority,
                  spec_yaml=spec_text, spec_source=source[:500], meta=meta or {}, run_rules=rule,
                  owner=actor.principal if actor else "",
                  summary={"not_applicable": the_plan.not_applicable})
        s.add(run)
        s.flush()
        requests: dict[str, tuple[ExportRequest, str]] = {}
        jobs: list[Job] = []
        for cell in the_plan.cells:
            req = cell.export_request(spec.parameters.compute_units)
            request = request_key(req)
            if request not in requests:  # a program file is keyed here; a torch model by its exporter
                requests[request] = (req, artifact_key(req) if keyed_without_exporter(req)
                                     else remembered_artifact(s, fleet, request, req, live, store))
            job = Job(id=new_id(), run_id=run_id, model=cell.model, backend=cell.backend,
                      device_class=cell.device_class, device_selector=cell.device_selector,
                      input_resolution=cell.input_resolution, batch_size=cell.batch_size,
                      iterations=iterations, warmup=spec.parameters.warmup,
                      repeat_index=cell.repeat_index, compute_units=spec.parameters.compute_units,
                      timeout_s=spec.parameters.timeout_s, artifact_key=requests[request][1],
                      request_key=request, priority=priority)
            if cell.blocked_reason:
                job.state, job.reason, job.finished_at = "blocked", cell.blocked_reason, utcnow()
            s.add(job)
            jobs.append(job)
        s.flush()
        events.submitted(s, run, spec, store)
        if actor is not None:
            audit.record(s, actor, "run.submit", run_id=run_id, trigger=trigger, name=spec.name[:200],
                         jobs=len(the_plan.cells), requested_by=requested_by[:200])
        # the largest programs' jobs first (see dispatch.dispatch_waiting): their messages lead the queues
        for request, (req, key) in sorted(requests.items(), key=lambda kv: -_request_work(kv[1][0])):
            if key and _ready(s, key, req, store):
                dispatch_waiting(s, key, fleet, outbox)
                continue
            platform, why = export_route(req.backend, alive)
            waiting = jobs_for_request(s, request)
            if platform is None:
                block_jobs(waiting, why)
                continue
            for job in waiting:
                if job.state == "queued":  # another run's jobs may be waiting for the same export
                    check_job_transition(job.state, "exporting")
                    job.state = "exporting"
            outbox.messages.append(Message("benchfarm.export", [request, asdict(req)],
                                           capp.export_queue(platform), priority))
        if all(job.state in JOB_TERMINAL for job in jobs):  # every cell blocked: nothing will finish it later
            finalize_if_done(s, run_id, outbox, fleet)
        outbox.stage(s)  # committed with the run: a submitter that dies before sending loses nothing
    return run_id, outbox


def _store_programs(spec: MatrixSpec, store: ArtifactStore) -> None:
    """Each uploaded program's artifact per backend, before the run exists: a digest that was
    never uploaded is refused (``BadSource``: 422 in the API) with nothing written."""
    from orchestrator.export.pipeline import export_artifact  # a program needs no torch to store

    for model in spec.models:
        if not Source.parse(model.source).is_program:
            continue
        digest = Source.parse(model.source).digest
        if not has_program(store, digest):
            raise BadSource(f"model {model.name!r}: source {model.source}: no such uploaded program in the store; "
                            "upload it first (POST /programs) or submit with the CLI on the host holding the file")
        for backend in spec.backends:
            export_artifact(ExportRequest(model=model.name, source=model.source, backend=backend), store)


def _request_work(req: ExportRequest) -> int:
    """The relative cost of one inference of the program ``req`` builds (dispatch.expected_work's)."""
    return req.input_resolution ** 2 * max(req.batch_size, 1)


def _ready(s: Session, key: str, req: ExportRequest, store: ArtifactStore) -> bool:
    """Whether the program file ``key`` is stored already (then its jobs dispatch at once)."""
    art = s.get(Artifact, key)
    if art is None:
        art = Artifact(key=key, model=req.model, backend=req.backend, input_resolution=req.input_resolution,
                       batch_size=req.batch_size)
        s.add(art)
    if art.status != "ready" and store.exists(key):
        mark_artifact_ready(art, store.get(key, verify=False).meta)
    return art.status == "ready"

"""Runs and jobs as the coordinator writes them, with real-looking 16-hex ids."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from orchestrator.store.models import Job, Run, utcnow

LONG_REASON = ("infrastructure failure on 00008130-001A2B3C4D5E6F70 after 3 attempts: launch_failed: dvt "
               "connect (Developer Disk Image mounted? Developer Mode on?): ConnectionTerminatedError")


def hexid() -> str:
    return uuid.uuid4().hex[:16]


def add_run(s: Session, name: str = "seed-matrix", trigger: str = "manual", status: str = "succeeded",
            age: timedelta = timedelta(minutes=5), run_id: str | None = None,
            jobs: list[tuple[str, str, str, str]] = ()) -> Run:  # type: ignore[assignment]
    """``jobs``: (backend, device class, state, reason) per job, model mobilenet_v3_small @224."""
    run = Run(id=run_id or hexid(), name=name, trigger=trigger, status=status, spec_yaml="{}",
              created_at=utcnow() - age, finalized=status != "running")
    s.add(run)
    s.flush()
    for backend, cls, state, reason in jobs:
        s.add(Job(id=hexid(), run_id=run.id, model="mobilenet_v3_small", backend=backend, device_class=cls,
                  input_resolution=224, batch_size=1, iterations=50, warmup=5, state=state, reason=reason))
    s.commit()
    return run


SEED_JOBS = [
    ("coreml", "A17-Pro", "succeeded", ""), ("mps", "A17-Pro", "blocked", "needs a macOS exporter (none is running)"),
    ("xnnpack", "A17-Pro", "waiting-for-device", ""), ("coreml-int8", "A15", "failed", LONG_REASON),
    ("xnnpack-int8", "M2", "exporting", ""), ("mps", "M2", "blocked", "needs a macOS exporter (none is running)"),
]

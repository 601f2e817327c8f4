"""Results store schema: runs -> jobs -> attempts, one result per job, artifacts.

A result is unique per job (database constraint): whatever Celery redelivers, the
second recording of a job's result is refused by the database, not by luck.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # nightly | pr | manual
    requested_by: Mapped[str] = mapped_column(String(200), default="")  # a free label, not proof
    # the principal of the API token that submitted it ("" for CLI/scheduler runs and runs made
    # before ownership): cancel-own compares this, never requested_by
    owner: Mapped[str] = mapped_column(String(200), default="", index=True)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    spec_yaml: Mapped[str] = mapped_column(Text)
    spec_source: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finalized: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # PR repo/number, baseline, ...
    # the run rule its cells were measured under, resolved at submit (orchestrator.spec.run_rules)
    run_rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    jobs: Mapped[list[Job]] = relationship(back_populates="run", cascade="all, delete-orphan")


class Artifact(Base):
    __tablename__ = "artifacts"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the export recipe
    model: Mapped[str] = mapped_column(String(200))
    backend: Mapped[str] = mapped_column(String(64))
    input_resolution: Mapped[int] = mapped_column(Integer)
    batch_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|ready|failed|blocked
    reason: Mapped[str] = mapped_column(Text, default="")
    file_sha256: Mapped[str] = mapped_column(String(64), default="")
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    export_time_s: Mapped[float] = mapped_column(Float, default=0.0)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # versions, delegation, params
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    # "has this run an open job?" on every recorded result: an index lookup, not a walk over
    # the run's finished jobs (finalize.finalize_if_done)
    __table_args__ = (Index("ix_jobs_run_id_state", "run_id", "state"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(200))
    backend: Mapped[str] = mapped_column(String(64))
    device_class: Mapped[str] = mapped_column(String(64), index=True)
    device_selector: Mapped[str] = mapped_column(String(200), default="")
    input_resolution: Mapped[int] = mapped_column(Integer)
    batch_size: Mapped[int] = mapped_column(Integer)
    iterations: Mapped[int] = mapped_column(Integer)
    warmup: Mapped[int] = mapped_column(Integer)
    repeat_index: Mapped[int] = mapped_column(Integer, default=0)
    compute_units: Mapped[str] = mapped_column(String(16), default="all")
    timeout_s: Mapped[int] = mapped_column(Integer, default=600)
    artifact_key: Mapped[str] = mapped_column(String(64), default="", index=True)
    # what the exporter was asked for (export.recipe.request_key): a torch model's artifact key
    # is known only once its exporter has fingerprinted it
    request_key: Mapped[str] = mapped_column(String(64), default="", index=True)
    # PR cells: the baseline's artifact, run interleaved with ours in the same lease (ABBA...)
    baseline_artifact_key: Mapped[str] = mapped_column(String(64), default="")
    ab_rounds: Mapped[int] = mapped_column(Integer, default=0)  # the minimum rounds
    # adaptive A/B: {"max_rounds", "budget_s", "min_effect"} (rounds added until decided)
    ab_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # measure: a cell of the spec | verify: the automatic re-run of a suspected regression
    purpose: Mapped[str] = mapped_column(String(16), default="measure")
    state: Mapped[str] = mapped_column(String(24), default="queued", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[int] = mapped_column(Integer, default=5)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    run: Mapped[Run] = relationship(back_populates="jobs")
    attempts: Mapped[list[Attempt]] = relationship(back_populates="job", cascade="all, delete-orphan")


class Attempt(Base):
    __tablename__ = "attempts"
    # the reaper's periodic "open attempts dispatched before the cutoff" (reap.reap_lost)
    __table_args__ = (Index("ix_attempts_state_dispatched_at", "state", "dispatched_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer, default=1)
    device_id: Mapped[str] = mapped_column(String(128), default="")
    host: Mapped[str] = mapped_column(String(200), default="")
    lease_token: Mapped[int] = mapped_column(Integer, default=0)
    # dispatched | running | succeeded | infra_failed | model_failed | fenced | cancelled
    state: Mapped[str] = mapped_column(String(16), default="dispatched")
    error_category: Mapped[str] = mapped_column(String(32), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    timeline: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dispatched_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    job: Mapped[Job] = relationship(back_populates="attempts")


class Result(Base):
    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("job_id", name="uq_results_job"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    simulated: Mapped[bool] = mapped_column(Boolean)
    device_id: Mapped[str] = mapped_column(String(128))
    device_model: Mapped[str] = mapped_column(String(64))
    os_version: Mapped[str] = mapped_column(String(64))
    load_time_ms: Mapped[float] = mapped_column(Float)
    median_ms: Mapped[float] = mapped_column(Float)
    p10_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    mean_ms: Mapped[float] = mapped_column(Float)
    # BIGINT: PostgreSQL's INTEGER stops at 2 GiB; the contract allows up to 2^50
    peak_memory_bytes: Mapped[int] = mapped_column(BigInteger)
    energy_mj: Mapped[float | None] = mapped_column(Float, nullable=True)
    # stability of the launch's iterations (orchestrator.analysis.stability): kept as columns so a
    # device's history is one query, not a read of every document
    cv: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99_p50: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the validated result document
    # interleaved A/B: the baseline arm measured in the same lease (order, rounds, latencies)
    ab: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DeviceEvent(Base):
    """One device state change, copied from the fleet's Redis stream (capacity history)."""

    __tablename__ = "device_events"
    stream_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # idempotent copy
    device_id: Mapped[str] = mapped_column(String(128), index=True)
    device_class: Mapped[str] = mapped_column(String(64), default="", index=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ApiToken(Base):
    """An API bearer token. Only a salted sha256 of its secret is stored: a leaked
    database does not leak usable tokens. The token's id is its lookup key."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    salt: Mapped[str] = mapped_column(String(64))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    # who the token acts for (several tokens may share one: a laptop's and a CI's); runs are owned by it
    principal: Mapped[str] = mapped_column(String(200), default="")
    scopes: Mapped[str] = mapped_column(String(200), default="read submit cancel-own")  # space-separated
    # cells this token's principal may have unfinished at once (also the most one spec may plan);
    # None: the deployment's per-spec limit only
    max_cells: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AuditEvent(Base):
    """One write (a run submitted or cancelled, a token created or revoked): who, what, when,
    which run or token. Written in the write's own transaction, so a write without its audit
    row cannot be committed. ``detail`` holds small facts (counts, scopes), never a secret."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)  # a token's principal, or cli:<os user>
    token_id: Mapped[str] = mapped_column(String(16), default="")  # the token used ("" from the CLI)
    action: Mapped[str] = mapped_column(String(32), index=True)  # run.submit | run.cancel | token.*
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # no FK: outlives runs
    target_token_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Profile(Base):
    """One profiling pass of a job (arm A: the job's own program; B: the baseline's, run in
    the same lease for A/B). Its operators are rows of ``profile_operators``; the raw
    ETDump is a file kept with retention (``etdump_path``), never stored here."""

    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint("job_id", "arm", name="uq_profiles_job_arm"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    arm: Mapped[str] = mapped_column(String(1), default="A")
    artifact_key: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(8))  # ok | error
    source: Mapped[str] = mapped_column(String(16))  # etdump | simulated
    simulated: Mapped[bool] = mapped_column(Boolean)
    iterations: Mapped[int] = mapped_column(Integer, default=0)
    method_mean_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    method_p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    wall_mean_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    pass_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    etrecord: Mapped[bool] = mapped_column(Boolean, default=False)
    etdump_path: Mapped[str] = mapped_column(String(200), default="")
    error_category: Mapped[str] = mapped_column(String(32), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    operators: Mapped[list[ProfileOperator]] = relationship(
        back_populates="profile", cascade="all, delete-orphan", order_by="ProfileOperator.position")


class ProfileOperator(Base):
    """One operator (or delegate event) of a profile: times over the profiled iterations."""

    __tablename__ = "profile_operators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # execution order
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(300))
    p10_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p50_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_ms: Mapped[float] = mapped_column(Float)
    share: Mapped[float] = mapped_column(Float)  # of the method's mean time
    delegated: Mapped[bool] = mapped_column(Boolean)
    backend: Mapped[str | None] = mapped_column(String(64), nullable=True)
    module_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    debug_handle: Mapped[int | None] = mapped_column(Integer, nullable=True)
    profile: Mapped[Profile] = relationship(back_populates="operators")


class OutboxBatch(Base):
    """Messages and events committed with the transaction that produced them, until sent.

    Sent after the commit and deleted; a batch still here a while after its commit belongs to
    a process that died (or lost the broker) in between, and the reconciler sends it. Sending
    twice is harmless: a run_job message is claimed once (``attempt:<id>``), an export is
    answered once per waiting job."""

    __tablename__ = "outbox"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    messages: Mapped[list[Any]] = mapped_column(JSON, default=list)
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)

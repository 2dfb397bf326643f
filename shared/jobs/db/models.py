"""SQLAlchemy models. The schema is created by the Alembic migrations in shared/jobs/db/migrations, never by
create_all."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from adq.core.status import JobStatus, Strategy


class StrEnum(TypeDecorator):
    """A str Enum stored as its value in a VARCHAR: rows carry members, and the schema stays a plain string
    column (so no migration, and no native enum type to alter when a member is added)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[Enum], length: int):
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value, dialect):
        return None if value is None else self.enum(value).value

    def process_result_value(self, value, dialect):
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    pass


class Calibration(Base):
    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    preset: Mapped[str] = mapped_column(String(64), index=True)
    settings_hash: Mapped[str] = mapped_column(String(32), index=True)
    student_settings: Mapped[dict] = mapped_column(JSON)
    percentiles: Mapped[dict] = mapped_column(JSON)  # {"0": v, ..., "100": v}
    n_samples: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(512))  # prompt file, or the shipped JSON it was imported from
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DeclaredPreset(Base):
    """A preset that a worker serving a Python pipeline object declared, so gateways and CLIs can submit to it."""

    __tablename__ = "declared_presets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry: Mapped[dict] = mapped_column(JSON)  # the presets-file format, validated again when read
    declared_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Frontier(Base):
    """The Pareto frontier `adq tune --record` stored for a preset: the settings the controller moves jobs along."""

    __tablename__ = "frontiers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    preset: Mapped[str] = mapped_column(String(64), index=True)
    points: Mapped[list] = mapped_column(JSON)  # adq.method.frontier.to_json
    source: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_owner_created", "owner", "created_at"),)  # a caller's job list, by cursor

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[JobStatus] = mapped_column(StrEnum(JobStatus, 32), index=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)  # API key name that submitted it
    webhook_url: Mapped[str | None] = mapped_column(String(2048))

    # Every parameter, as resolved at submit time.
    prompt: Mapped[str] = mapped_column(Text)
    preset: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    k: Mapped[int] = mapped_column(Integer)
    sigma: Mapped[float] = mapped_column(Float)
    strategy: Mapped[Strategy] = mapped_column(StrEnum(Strategy, 16))
    student_steps: Mapped[int] = mapped_column(Integer)
    student_guidance: Mapped[float] = mapped_column(Float)
    teacher_steps: Mapped[int] = mapped_column(Integer)
    teacher_guidance: Mapped[float] = mapped_column(Float)
    init_image: Mapped[str | None] = mapped_column(String(64), index=True)  # upload id (sha256) of the input
    strength: Mapped[float | None] = mapped_column(Float)
    control_image: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    output_format: Mapped[str | None] = mapped_column(String(8))  # the final image's: png, jpeg, webp (None: png)
    output_quality: Mapped[int | None] = mapped_column(Integer)
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    aspect_ratio: Mapped[str | None] = mapped_column(String(8))  # as asked; width and height hold the size it made
    megapixels: Mapped[float | None] = mapped_column(Float)
    num_outputs: Mapped[int | None] = mapped_column(Integer)  # images the request asked for: its group's size
    nsfw: Mapped[bool | None] = mapped_column(Boolean)  # the safety filter flagged the final image (withheld)
    safety_filter: Mapped[str | None] = mapped_column(String(64))  # which filter judged it

    # The routing decision and its inputs.
    calibration_id: Mapped[int | None] = mapped_column(ForeignKey("calibrations.id"))
    tau: Mapped[float | None] = mapped_column(Float)  # the tau the decision used (the prior until decided)
    k_max: Mapped[int | None] = mapped_column(Integer)  # the fill policy may raise the share up to this
    effective_k: Mapped[int | None] = mapped_column(Integer)  # the share the decision used, after the controller
    tau_source: Mapped[str | None] = mapped_column(String(16))  # "live" or "calibration"
    control_policy: Mapped[str | None] = mapped_column(String(16))  # "fixed", "slo" or "fill"
    route_reason: Mapped[str | None] = mapped_column(String(255))
    student_score: Mapped[float | None] = mapped_column(Float)
    teacher_used: Mapped[bool | None] = mapped_column(Boolean)
    student_steps_run: Mapped[int | None] = mapped_column(Integer)
    teacher_steps_run: Mapped[int | None] = mapped_column(Integer)
    student_batch: Mapped[int | None] = mapped_column(Integer)  # jobs in the student's model call, this one included
    teacher_batch: Mapped[int | None] = mapped_column(Integer)
    total_steps: Mapped[int | None] = mapped_column(Integer)

    student_image_key: Mapped[str | None] = mapped_column(String(512))
    final_image_key: Mapped[str | None] = mapped_column(String(512))

    # Two budgets: attempts count crashed claims (poison jobs stop at max_attempts); transient retries count
    # outages waited out, which never fail a job before transient_retry_for_s has passed.
    student_attempts: Mapped[int] = mapped_column(Integer, default=0)
    teacher_attempts: Mapped[int] = mapped_column(Integer, default=0)
    fence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # +1 on every claim; never reused
    transient_retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    transient_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # start of this outage
    last_transient_error: Mapped[str | None] = mapped_column(Text)
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # operator retries
    history: Mapped[list | None] = mapped_column(JSON)  # earlier errors, kept across operator retries
    frontier_point: Mapped[dict | None] = mapped_column(JSON)  # the tuned setting the controller chose, if any
    webhook_delivered: Mapped[str | None] = mapped_column(String(128))  # id of the last event delivered
    webhook_events: Mapped[list | None] = mapped_column(JSON)  # the events the receiver wants; None: all
    # The outbox: set by the same UPDATE that commits the final state, cleared once the event is delivered (or
    # rejected, or given up on), so a worker that dies in between leaves it for the sweeper to send.
    webhook_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0", index=True)
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    webhook_last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's last HTTP status
    webhook_last_error: Mapped[str | None] = mapped_column(Text)
    webhook_last_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    queue_priority: Mapped[int] = mapped_column(Integer, default=3, server_default="3")  # the broker's step, 0 first
    batch_id: Mapped[str | None] = mapped_column(String(36), index=True)
    steps_done: Mapped[int | None] = mapped_column(Integer)  # denoising steps a cancelled run had finished
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # images pruned (retention)
    error: Mapped[str | None] = mapped_column(Text)
    student_worker: Mapped[str | None] = mapped_column(String(255))
    teacher_worker: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Seconds spent per stage, measured in the worker.
    generate_s: Mapped[float | None] = mapped_column(Float)
    score_s: Mapped[float | None] = mapped_column(Float)
    teacher_s: Mapped[float | None] = mapped_column(Float)
    student_wait_s: Mapped[float | None] = mapped_column(Float)  # submit -> student claim
    teacher_wait_s: Mapped[float | None] = mapped_column(Float)  # teacher_queued -> teacher claim

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last message sent
    student_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    student_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    teacher_queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    teacher_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScoreSketch(Base):
    """One student worker's quantile sketch of the student scores it saw in one time bucket, per calibration key.
    Merged across workers and buckets, they are the live score distribution that live tau is read from."""

    __tablename__ = "score_sketches"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)  # preset + student-settings hash
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # start of the bucket, Unix seconds
    holder: Mapped[str] = mapped_column(String(255), primary_key=True)  # the worker process
    n: Mapped[int] = mapped_column(Integer)
    sketch: Mapped[bytes] = mapped_column(LargeBinary)  # a serialised DataSketches KLL sketch
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Batch(Base):
    """One POST /v1/batches: its jobs carry its id. The request's hash answers a repeated idempotency key."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobEvent(Base):
    """Every status change, written in the transaction that makes it: the event streams replay from here, so a
    client that reconnects with Last-Event-ID misses nothing."""

    __tablename__ = "job_events"
    # (status, at): the service rate the events' ETAs use counts one status's recent rows (adq.jobs.events).
    __table_args__ = (Index("ix_job_events_status_at", "status", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

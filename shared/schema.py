"""The job's public shapes, derived from one field set (``shared.params.JobParams``), as the full-stack FastAPI
template derives ``ItemCreate`` and ``ItemPublic`` from ``ItemBase``:

- ``JobOptions``: the settable parameters, each optional (unset means "from the preset"); the CLI's flags are
  generated from it;
- ``JobRequest``: the HTTP body, ``JobOptions`` plus the prompt and a webhook;
- ``JobView``: ``JobParams`` plus the job's state. It is the HTTP response model, the CLI's ``--json`` output and
  the webhook body's ``job``: one thing, not three.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.params import SETTABLE, JobParams
from shared.status import TERMINAL, JobStatus

AUDIT_TIMES = (
    "created_at",
    "enqueued_at",
    "student_started_at",
    "student_finished_at",
    "teacher_queued_at",
    "teacher_started_at",
    "finished_at",
)
TIMINGS = ("generate_s", "score_s", "teacher_s")


def _optional(name: str) -> tuple[Any, Any]:
    field = JobParams.model_fields[name]
    return field.annotation | None, Field(None, description=field.description)


JobOptions: type[BaseModel] = create_model(
    "JobOptions",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Parameters a caller may set; unset ones come from the preset.",
    **{name: _optional(name) for name in SETTABLE},
)


class JobRequest(JobOptions):  # type: ignore[misc, valid-type]
    """POST /v1/jobs."""

    prompt: str = Field(description=JobParams.model_fields["prompt"].description)
    webhook_url: str | None = Field(None, description="POSTed a signed JSON body when the job finishes")


class ImageLinks(BaseModel):
    student: str | None = None
    final: str | None = None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


class JobView(JobParams):
    """A job as callers see it."""

    id: str
    status: JobStatus
    threshold: float | None = Field(description="The cut-off tau the decision used (the calibrated prior before)")
    effective_k: int | None = Field(None, description="The share the decision used, after the controller")
    threshold_source: str | None = Field(None, description="Where tau came from: live or calibration")
    control_policy: str | None = Field(None, description="The controller's policy at the decision: fixed, slo, fill")
    route_reason: str | None = Field(None, description="Why the job went where it went, in one line")
    student_score: float | None
    teacher_used: bool | None
    student_steps_run: int | None
    teacher_steps_run: int | None
    total_steps: int | None
    student_image_key: str | None
    final_image_key: str | None
    student_attempts: int = Field(description="Claims of the student stage that count against ADQ_MAX_ATTEMPTS")
    teacher_attempts: int
    transient_retries: int = Field(0, description="Outages waited out (never counted against the attempts)")
    last_transient_error: str | None = None
    retries: int = Field(0, description="Operator retries (`adq retry`)")
    history: list = Field(default_factory=list, description="Earlier errors, kept across operator retries")
    error: str | None
    student_worker: str | None
    teacher_worker: str | None
    timings: dict = Field(description="Seconds: generate_s, score_s, teacher_s")
    times: dict = Field(description="ISO-8601 UTC times of each step")
    idempotency_key: str | None = None
    owner: str | None = None
    webhook_url: str | None = None
    images: ImageLinks = Field(default_factory=ImageLinks, description="Presigned links (gateway only)")
    created: bool = Field(True, description="False when an idempotency key returned an earlier job")

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def of(cls, job, created: bool = True) -> JobView:
        own = set(cls.model_fields) - {"timings", "times", "created", "images", "history"}
        fields = {name: getattr(job, name) for name in own if hasattr(job, name)}
        fields.update(
            timings={name: getattr(job, name) for name in TIMINGS},
            times={name: _iso(getattr(job, name)) for name in AUDIT_TIMES},
            history=list(getattr(job, "history", None) or []),
            created=created,
        )
        if fields.get("k_max") is None:  # rows from before k_max existed
            fields["k_max"] = fields["k"]
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

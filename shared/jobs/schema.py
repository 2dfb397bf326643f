"""The job's public shapes, derived from one field set (``adq.method.params.JobParams``), as the full-stack FastAPI
template derives ``ItemCreate`` and ``ItemPublic`` from ``ItemBase``:

- ``JobOptions``: the settable parameters, each optional (unset means "from the preset"); the CLI's flags are
  generated from it;
- ``JobRequest``: the HTTP body, ``JobOptions`` plus the prompt and a webhook;
- ``JobView``: ``JobParams`` plus the job's state. It is the HTTP response model, the CLI's ``--json`` output and
  the webhook body's ``job``: one thing, not three.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model

from adq.core.config import Settings
from adq.core.status import TERMINAL, JobStatus
from adq.jobs.priority import Priority
from adq.method.params import MAX_SEED, SETTABLE, JobParams
from adq.method.presets import get_preset, preset_names

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


_DEFAULTS = Settings.model_fields
MAX_OUTPUTS = 4  # images per request, as Replicate's num_outputs allows
# What JSON Schema can say of each settable field, so the published schema admits only requests the API accepts
# (check_inputs still checks everything, for every caller). Bounds that are settings are documented at their
# defaults.
BOUNDS: dict[str, dict] = {
    "k": dict(ge=0, le=100),
    "k_max": dict(ge=0, le=100),
    "sigma": dict(ge=1 / _DEFAULTS["max_steps"].default, le=1),  # the floor: 1 / ADQ_MAX_STEPS
    "strength": dict(ge=1 / _DEFAULTS["max_steps"].default, le=1),
    "init_image": dict(min_length=1, pattern=r"^(data:|https?://|[0-9a-f]{64}$)"),
    "control_image": dict(min_length=1, pattern=r"^(data:|https?://|[0-9a-f]{64}$)"),
    "seed": dict(ge=0, le=MAX_SEED),
    "output_quality": dict(ge=1, le=100),
    "width": dict(ge=8, le=_DEFAULTS["max_image_side"].default, multiple_of=8),
    "height": dict(ge=8, le=_DEFAULTS["max_image_side"].default, multiple_of=8),
    "megapixels": dict(ge=0.01, le=4.0),
    "negative_prompt": dict(max_length=_DEFAULTS["max_prompt_chars"].default, pattern=r"^[^\x00]*$"),
    "student_steps": dict(ge=1, le=_DEFAULTS["max_steps"].default),
    "teacher_steps": dict(ge=1, le=_DEFAULTS["max_steps"].default),
}
BLANK = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
PROMPT = dict(
    min_length=1,
    max_length=_DEFAULTS["max_prompt_chars"].default,
    # Not blank, no NUL. Blank is what str.strip() removes, spelled out: JSON Schema's \s (ECMAScript) leaves out
    # U+0085 and U+001C-U+001F, which Python's strip and pydantic's \s take as spaces, so "\x85" alone was a
    # schema-valid prompt the server refused.
    pattern=rf"^[^\x00]*[^\x00{BLANK}][^\x00]*$",
    description=JobParams.model_fields["prompt"].description,
)


def _known_preset(name: str) -> str:
    get_preset(name)  # InputError, a ValueError, names the choices
    return name


# The documented choices are the presets known when this process started; a preset that a pipeline worker declared
# later (adq worker --pipeline) is accepted too.
PresetName = Annotated[str, AfterValidator(_known_preset), WithJsonSchema({"type": "string", "enum": preset_names()})]


def _not_bool(value):
    # JSON's true is not the number 1: pydantic's lax mode would take it as one, and the schema says number.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


LIMITS = {
    "ge": (annotated_types.Ge, "minimum"),
    "le": (annotated_types.Le, "maximum"),
    "gt": (annotated_types.Gt, "exclusiveMinimum"),
    "multiple_of": (annotated_types.MultipleOf, "multipleOf"),
}


def _optional(name: str) -> tuple[Any, Any]:
    field = JobParams.model_fields[name]
    kind = PresetName if name == "preset" else field.annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # "X | None": the request's None is "unset"
        kind = next(t for t in typing.get_args(kind) if t is not type(None))
    bounds = BOUNDS.get(name, {})
    if kind in (int, float):
        # With a validator in front, pydantic cannot put the bounds into the schema itself: state it outright.
        limits = [LIMITS[k][0](v) for k, v in bounds.items()]
        shown = {"type": "integer" if kind is int else "number"} | {LIMITS[k][1]: v for k, v in bounds.items()}
        number = Annotated[(kind, BeforeValidator(_not_bool), *limits, WithJsonSchema(shown))]
        return number | None, Field(None, description=field.description)
    return kind | None, Field(None, description=field.description, **bounds)


# A size is given as width and height, or as an aspect ratio (with megapixels), never both (null is unset).
SIZE_RULES = {
    "allOf": [
        {
            "if": {"required": [by], "properties": {by: {"not": {"type": "null"}}}},
            "then": {"properties": {"width": {"type": "null"}, "height": {"type": "null"}}},
        }
        for by in ("aspect_ratio", "megapixels")
    ]
}

JobOptions: type[BaseModel] = create_model(
    "JobOptions",
    __config__=ConfigDict(extra="forbid", json_schema_extra=SIZE_RULES),
    __doc__="Parameters a caller may set; unset ones come from the preset.",
    **{name: _optional(name) for name in SETTABLE},
)


class Delivery(BaseModel):
    """Where and how a job is delivered, beside its parameters: shared by jobs and batches."""

    priority: Priority = Field("normal", description="Queue priority: high, normal or low")
    webhook_url: str | None = Field(
        None,
        max_length=2048,
        # the path in printable ASCII: JSON Schema's \s and Python's differ (\x85 and \x1c-\x1f)
        pattern=r"^https?://[A-Za-z0-9.-]+(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$",
        description="POSTed a signed event (Standard Webhooks) when the job finishes; an http(s) URL whose "
        "host does not resolve to a private, loopback or link-local address",
    )
    webhook_events: list[Literal["job.succeeded", "job.failed", "job.cancelled"]] | None = Field(
        None, min_length=1, description="The events the webhook wants; unset: all three"
    )


class JobRequest(JobOptions, Delivery):  # type: ignore[misc, valid-type]
    """POST /v1/jobs."""

    # What JSON Schema can say of the cross-field rules, it says: a schema-valid request is not refused for them.
    model_config = ConfigDict(json_schema_extra={"dependentRequired": {"strength": ["init_image"]}, **SIZE_RULES})

    prompt: str = Field(**PROMPT)
    num_outputs: Annotated[
        int,
        BeforeValidator(_not_bool),
        annotated_types.Ge(1),
        annotated_types.Le(MAX_OUTPUTS),
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_OUTPUTS}),
    ] = Field(
        1,
        description="Images to make (1-4): each its own job in one group, seeded seed, seed+1, ...; the answer is "
        "the first job's view, whose outputs list every image and whose batch_id names the group",
    )


class Output(BaseModel):
    """One image of a request for several (num_outputs), or the job's own image."""

    id: str = Field(description="The job that makes this image")
    seed: int
    status: JobStatus
    final_image_key: str | None = Field(None, description="Its final image; null until it succeeds, or withheld")
    image: str | None = Field(None, description="A link to the final image (gateway only)")
    nsfw: bool | None = Field(None, description="True when the safety filter withheld the image")


class ImageLinks(BaseModel):
    student: str | None = None
    final: str | None = None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _model_seconds(job) -> float | None:
    spent = [getattr(job, name, None) for name in TIMINGS]
    return None if all(s is None for s in spent) else round(sum(s or 0.0 for s in spent), 3)


class JobView(JobParams):
    """A job as callers see it."""

    id: str
    status: JobStatus
    tau: float | None = Field(description="The cut-off tau the decision used (the calibrated prior before)")
    effective_k: int | None = Field(None, description="The share the decision used, after the controller")
    tau_source: str | None = Field(None, description="Where tau came from: live or calibration")
    control_policy: str | None = Field(None, description="The controller's policy at the decision: fixed, slo, fill")
    route_reason: str | None = Field(None, description="Why the job went where it went, in one line")
    frontier_point: dict | None = Field(
        None, description="The tuned setting (k, strategy, sigma, teacher_steps) a control policy moved the job to"
    )
    student_score: float | None
    teacher_used: bool | None
    student_steps_run: int | None
    teacher_steps_run: int | None
    student_batch: int | None = Field(None, description="Jobs in the student's model call, this one included")
    teacher_batch: int | None = Field(None, description="Jobs in the teacher's model call, this one included")
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
    webhook_events: list[str] | None = None
    webhook: dict = Field(
        default_factory=dict, description="Delivery record: attempts, last_status, last_error, last_at, delivered"
    )
    priority: str = "normal"
    batch_id: str | None = None
    steps_done: int | None = Field(None, description="Denoising steps a cancelled run had finished when it stopped")
    expired: bool = Field(False, description="True once retention deleted the images (ADQ_RESULT_TTL_S)")
    images: ImageLinks = Field(default_factory=ImageLinks, description="Presigned links (gateway only)")
    started_at: str | None = Field(None, description="When a worker first started the job (ISO-8601 UTC)")
    predict_s: float | None = Field(None, description="Seconds of model time so far: generate, score and teacher")
    queue_position: int | None = Field(
        None, description="While queued (for either stage): jobs ahead of it in its queue and priority (gateway only)"
    )
    eta_s: float | None = Field(
        None, description="While queued: seconds until a worker takes it, from the last minute's rate (gateway only)"
    )
    created: bool = Field(True, description="False when an idempotency key returned an earlier job")
    num_outputs: int = Field(1, description="Images the request asked for; batch_id names their group")
    outputs: list[Output] = Field(
        default_factory=list,
        description="Every image of the request: its group's jobs in seed order (gateway, webhooks)",
    )
    nsfw: bool | None = Field(None, description="True when the safety filter withheld the final image")
    safety_filter: str | None = Field(None, description="The filter that judged the final image; null when off")

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def of(cls, job, created: bool = True) -> JobView:
        own = set(cls.model_fields) - {"timings", "times", "created", "images", "history", "webhook", "expired"}
        own -= {"started_at", "predict_s", "queue_position", "eta_s", "outputs", "num_outputs"}
        fields = {name: getattr(job, name) for name in own if hasattr(job, name)}
        fields.update(
            expired=getattr(job, "expired_at", None) is not None,
            webhook={
                "attempts": getattr(job, "webhook_attempts", 0) or 0,
                "last_status": getattr(job, "webhook_last_status", None),
                "last_error": getattr(job, "webhook_last_error", None),
                "last_at": _iso(getattr(job, "webhook_last_at", None)),
                "delivered": getattr(job, "webhook_delivered", None),
                "pending": bool(getattr(job, "webhook_pending", False)),
            }
            if getattr(job, "webhook_url", None)
            else {},
            timings={name: getattr(job, name) for name in TIMINGS},
            times={name: _iso(getattr(job, name)) for name in AUDIT_TIMES},
            history=list(getattr(job, "history", None) or []),
            created=created,
            started_at=_iso(getattr(job, "student_started_at", None)),
            num_outputs=getattr(job, "num_outputs", None) or 1,
            predict_s=_model_seconds(job),
        )
        if fields.get("priority") is None:  # a row not yet flushed
            fields["priority"] = "normal"
        if fields.get("k_max") is None:  # rows from before k_max existed
            fields["k_max"] = fields["k"]
        if fields.get("output_format") is None:  # rows from before output formats existed, or not yet flushed
            fields["output_format"] = "png"
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


BatchItem: type[BaseModel] = create_model(
    "BatchItem",
    __base__=JobOptions,
    __doc__="One prompt of a batch, with its own overrides of the shared parameters.",
    prompt=(str, Field(**PROMPT)),
)


class BatchRequest(Delivery):
    """POST /v1/batches: ``shared`` parameters for every item, each item's own overriding them."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchItem] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=_DEFAULTS["max_batch"].default, description="At most ADQ_MAX_BATCH prompts"
    )
    shared: JobOptions = Field(default_factory=JobOptions, description="Parameters every item gets")  # type: ignore


class BatchView(BaseModel):
    id: str
    size: int
    created_at: str | None
    status: dict[str, int] = Field(description="Jobs per status")
    done: bool = Field(description="True once every job finished")
    job_ids: list[str]
    jobs: list[JobView] = Field(default_factory=list, description="The items' jobs, in item order")

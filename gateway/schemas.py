"""Request and response bodies of the gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., description="Text prompt (1 to ADQ_MAX_PROMPT_CHARS characters)")
    k: int | None = Field(None, description="Percent of jobs the teacher improves, 0-100")
    sigma: float | None = Field(None, description="Rollback value for refinement, in (0, 1]")
    strategy: Literal["refine", "regenerate"] | None = None
    seed: int | None = None
    preset: str | None = None
    student_steps: int | None = None
    teacher_steps: int | None = None
    webhook_url: str | None = Field(None, description="POSTed a signed JSON body when the job finishes")


class ImageLinks(BaseModel):
    student: str | None = None
    final: str | None = None


class JobResponse(BaseModel):
    id: str
    status: str
    prompt: str
    preset: str
    seed: int
    k: int
    sigma: float
    strategy: str
    threshold: float | None
    student_score: float | None
    teacher_used: bool | None
    student_steps_run: int | None
    teacher_steps_run: int | None
    total_steps: int | None
    student_attempts: int
    teacher_attempts: int
    error: str | None
    timings: dict
    times: dict
    images: ImageLinks


class ErrorResponse(BaseModel):
    error: str
    detail: str | list | None = None

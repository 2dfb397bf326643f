"""Typed dependencies: routes take ``who: Caller`` and ``job: OwnedJob`` instead of calling helpers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from adq.gateway.auth import caller, check_owner, reader
from adq.jobs import records
from adq.jobs.schema import JobView

Caller = Annotated[str | None, Depends(caller)]
Reader = Annotated[str | None, Depends(reader)]  # None: may read every job (an operator key, or auth off)
# Stored scoped by the key's name ("name:key", adq.jobs.records), in a 255-character column: 190 + 1 + 64 fits.
IdempotencyKey = Annotated[str | None, Header(max_length=190)]


def owned_job(job_id: str, who: Reader) -> JobView:
    """The job, if the caller's key owns it or is an operator's (404 when missing or another key's)."""
    view = records.get(job_id)
    check_owner(view.owner, who, job_id)
    return view


OwnedJob = Annotated[JobView, Depends(owned_job)]

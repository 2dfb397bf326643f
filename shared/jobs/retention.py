"""Retention: finished jobs keep their images for ADQ_RESULT_TTL_S, then ``prune`` deletes the images and marks
the rows expired (the rows stay, so a job's history and billing survive; reading its image answers 410).

Deleting comes before marking: a prune that dies in between leaves a row whose image is gone but not yet marked,
and the next prune deletes again (deletes are idempotent) and marks it. The S3 lifecycle rule in
infra/s3-lifecycle.json expires the objects too, a day later, as a backstop for a prune that never runs."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select, update

from adq.core.config import get_settings
from adq.core.status import TERMINAL
from adq.jobs import inputs
from adq.jobs.db.jobs import utcnow
from adq.jobs.db.models import Job, JobEvent
from adq.jobs.db.session import session_scope
from adq.jobs.storage import get_storage

log = logging.getLogger(__name__)


def due(ttl_s: float, limit: int) -> list[tuple[str, list[str]]]:
    """Jobs to expire, with the keys to delete: their images, and their input images that no other unexpired job
    of the same key still uses (inputs follow the retention of the jobs that use them)."""
    cutoff = utcnow() - timedelta(seconds=ttl_s)
    stmt = (
        select(Job.id, Job.owner, Job.init_image, Job.control_image, Job.student_image_key, Job.final_image_key)
        .where(Job.status.in_(list(TERMINAL)), Job.finished_at < cutoff, Job.expired_at.is_(None))
        .order_by(Job.finished_at)
        .limit(limit)
    )
    out = []
    with session_scope() as s:
        for job_id, owner, init, control, *keys in s.execute(stmt).all():
            for sha in {x for x in (init, control) if x} - _still_used(s, job_id, owner, init, control):
                keys.append(inputs.key(sha, owner))
            out.append((job_id, sorted({k for k in keys if k})))
    return out


def _still_used(s, job_id: str, owner, init, control) -> set[str]:
    others = (Job.id != job_id, Job.expired_at.is_(None), Job.owner.is_(None) if owner is None else Job.owner == owner)
    used = set()
    for column in (Job.init_image, Job.control_image):
        for sha in {x for x in (init, control) if x}:
            if s.scalar(select(Job.id).where(column == sha, *others).limit(1)) is not None:
                used.add(sha)
    return used


def prune(ttl_s: float | None = None, limit: int = 1000, dry_run: bool = False) -> int:
    """Expire up to ``limit`` jobs finished more than ``ttl_s`` ago; returns how many. ttl 0 keeps everything."""
    ttl_s = get_settings().result_ttl_s if ttl_s is None else ttl_s
    if ttl_s <= 0:
        return 0
    store = get_storage()
    expired = 0
    for job_id, keys in due(ttl_s, limit):
        if dry_run:
            expired += 1
            continue
        for key in keys:
            store.delete(key)
        with session_scope() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.expired_at.is_(None))
                .values(expired_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        expired += 1
    events = 0 if dry_run else prune_events(ttl_s)
    uploads = 0 if dry_run else prune_uploads()
    log.info("pruned %d jobs, %d events and %d unused uploads", expired, events, uploads)
    return expired


def prune_uploads(ttl_s: float | None = None) -> int:
    """Delete input images sent over ``ttl_s`` ago (ADQ_UPLOAD_TTL_S) that no unexpired job uses: an upload
    nothing ever used, or one whose jobs have all expired. The same bytes sent again start the clock over."""
    import time

    from adq.jobs.priority import owner_tag

    ttl_s = get_settings().upload_ttl_s if ttl_s is None else ttl_s
    if ttl_s <= 0:
        return 0
    store, cutoff = get_storage(), time.time() - ttl_s
    old = [o for o in store.listing(inputs.PREFIX) if o.modified < cutoff]
    if not old:
        return 0
    shas = {o.key.rsplit("/", 1)[1] for o in old}
    with session_scope() as s:  # which (owner tag, sha) pairs unexpired jobs still use
        rows = s.execute(
            select(Job.owner, Job.init_image, Job.control_image).where(
                Job.expired_at.is_(None), (Job.init_image.in_(shas)) | (Job.control_image.in_(shas))
            )
        ).all()
    used = {f"{inputs.PREFIX}/{owner_tag(owner)}/{sha}" for owner, *images in rows for sha in images if sha}
    gone = [o.key for o in old if o.key not in used]
    for key in gone:
        store.delete(key)
    return len(gone)


def prune_events(ttl_s: float, limit: int = 10_000) -> int:
    """Delete up to ``limit`` event-log rows older than ``ttl_s``: a stream resumes within hours, not weeks, and
    the log would otherwise grow with every job ever run."""
    cutoff = utcnow() - timedelta(seconds=ttl_s)
    with session_scope() as s:
        ids = list(s.scalars(select(JobEvent.id).where(JobEvent.at < cutoff).order_by(JobEvent.id).limit(limit)))
        if ids:
            s.execute(delete(JobEvent).where(JobEvent.id.in_(ids)).execution_options(synchronize_session=False))
    return len(ids)

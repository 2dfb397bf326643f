"""The one retry policy, in one base task class (as dramatiq keeps it in one middleware).

- A transient error (storage, database, broker or webhook receiver unavailable) waits the outage out: retry with
  exponential backoff and full jitter, never counted against ADQ_MAX_ATTEMPTS, until the outage has lasted
  ADQ_TRANSIENT_RETRY_FOR_S (timed in the message, so it holds while the database is out too).
- A crash (the process died, the lease ran out) is counted by the claim itself in the database, and
  ADQ_MAX_ATTEMPTS of them fail the job: that budget stops poison jobs.
- Anything else fails the job at once, and its webhook is queued.
"""

from __future__ import annotations

import logging
import random
import time

from celery import Task

from adq import context
from adq.core import logs
from adq.core.config import get_settings
from adq.core.errors import Interrupted, TransientError
from adq.core.status import Route
from adq.jobs import runner
from adq.jobs.db import jobs
from adq.jobs.holders import Claimant, holder_id, is_gone
from adq.jobs.stage import TEACHER, Stage
from adq.tasks import transports
from adq.tasks.enqueue import notify, send_stage

log = logging.getLogger(__name__)


def full_jitter(retries: int) -> float:
    """Exponential backoff with full jitter: many messages hitting one outage do not come back in step."""
    s = get_settings()
    return transports.countdown(random.uniform(0.0, min(s.retry_backoff_max_s, s.retry_backoff_s * 2**retries)), s)


class AdqTask(Task):
    """Base of every project task: the policy above. Subclasses only run their step."""

    # Outages are bounded by time (ADQ_TRANSIENT_RETRY_FOR_S), not by a count: Celery's own retry cap is off.
    # (retry(max_retries=None) would mean "the task's default", which is 3.)
    max_retries = None

    def wait_out(self, job_id: str, exc: TransientError, *, outage_since: float | None, **kwargs):
        """Retry after a transient error, or fail the job once its outage outlasts the budget."""
        since = outage_since or time.time()
        budget = get_settings().transient_retry_for_s
        if time.time() - since > budget:
            return self.give_up(
                job_id,
                f"outage lasted over ADQ_TRANSIENT_RETRY_FOR_S={budget:g} s; last error: {type(exc).__name__}: {exc}",
            )
        log.warning("job %s: %s: %s; retry %d", job_id, self.name, exc, self.request.retries + 1)
        raise self.retry(exc=exc, countdown=full_jitter(self.request.retries), kwargs={**kwargs, "outage_since": since})

    def give_up(self, job_id: str, reason: str) -> str:
        row = jobs.fail(job_id, reason)
        if row is not None:
            notify(row)
        return "failed"


class StageTask(AdqTask):
    """A queue stage: run it through adq.jobs.runner, then send what its outcome routes to."""

    stage: Stage

    def run_stage(self, job_id: str, own_fence: int | None, outage_since: float | None) -> str:
        with logs.job_context(job_id=job_id, stage=self.stage.name):
            return self._run_stage(job_id, own_fence, outage_since)

    def _run_stage(self, job_id: str, own_fence: int | None, outage_since: float | None) -> str:
        try:
            who = Claimant(holder_id(self.request.hostname), own_fence, is_gone)
            outcome = runner.run(self.stage, job_id, who, context.current())
        except TransientError as exc:
            if not isinstance(exc, Interrupted):  # the claim itself met the outage
                try:
                    jobs.note_transient(job_id, f"{type(exc).__name__}: {exc}")
                except TransientError:
                    pass
            fence = exc.fence if isinstance(exc, Interrupted) else own_fence
            return self.wait_out(job_id, exc, outage_since=outage_since, own_fence=fence)
        except Exception as exc:
            log.exception("job %s %s failed", job_id, self.stage)
            return self.give_up(job_id, f"{self.stage}: {type(exc).__name__}: {exc}")
        # 7. Route: send the message the decision asked for, after the commit that recorded it
        if outcome.route is Route.TEACHER:
            send_stage(TEACHER, job_id, outcome.job.queue_priority, outcome.job.preset)
            return "teacher"
        if outcome.finished:
            notify(outcome.job)
            return outcome.job.status.value
        return "skipped"  # a duplicate, a cancelled job, or a stage another live attempt holds

"""The controller's share moves a job along the recorded frontier (PostgreSQL or SQLite for the frontier, Redis for
the published share)."""

import time

from adq.method.frontier import Point, Setting
from tests.helpers import configured


def test_the_controller_moves_a_job_along_the_recorded_frontier(sqlite_env, redis_url):
    """Under slo with a published share, the decision picks the frontier point the share's teacher work affords,
    the job records it, and its teacher stage runs that point's strategy and steps."""
    import redis

    from adq import context
    from adq.control import published
    from adq.control.policy import ControlState
    from adq.jobs import runner
    from adq.jobs.db import frontiers, jobs
    from adq.jobs.holders import Claimant
    from adq.jobs.stage import STUDENT, TEACHER
    from tests.factories import job

    r = redis.Redis.from_url(redis_url)
    cheap = Point(Setting(1, 100, "regenerate", None, 2), 3.0, 2.0, 0.61)  # work 2.0 per job
    rich = Point(Setting(1, 100, "regenerate", None, 4), 5.0, 4.0, 0.64)  # work 4.0 per job (null's S is 1)
    with configured(ADQ_CONTROL_REDIS_URL=redis_url, ADQ_WORKER_DESIGN="serial", ADQ_PRESET="null"):
        frontiers.record("null", [cheap, rich], source="test")
        share = ControlState("slo", 50.0, 100.0, 10.0, 1, time.time(), "test")
        published.publish(r, share)  # half the asked share: 0.5 x 100 % x T=4 affords 2 teacher steps per job
        row = job(preset="null", k=100, teacher_steps=4)
        ctx = context.current()
        moved = runner.run(STUDENT, row.id, Claimant("w/1"), ctx).job
        assert moved.frontier_point == {"k": 100, "strategy": "regenerate", "sigma": None, "teacher_steps": 2}
        assert moved.route_reason.startswith("frontier S=1 k=100 regenerate T=2")
        done = runner.run(TEACHER, row.id, Claimant("w/1"), ctx).job
        assert done.teacher_steps_run == 2  # the point's steps, not the 4 the job asked for
        r.delete(published.KEY)
        ctx.decider.published._read_at -= published.CACHE_S  # the worker's cached view of the controller expires
        other = job(preset="null", k=100, teacher_steps=4)
        assert runner.run(STUDENT, other.id, Claimant("w/1"), ctx).job.frontier_point is None  # no controller: as asked
        assert jobs.get(other.id).effective_k == 100

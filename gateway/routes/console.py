"""/console: the operator's page (static files, no build step, no CDN), and the two views it needs beyond the jobs
API: what the system is doing now, and each calibration's score distribution against the live one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import case, func, select

from adq.core.config import get_settings
from adq.gateway import entitlements
from adq.gateway.deps import Reader
from adq.gateway.errors import COUNTED, RESPONSES
from adq.method.presets import get_preset

STATIC = Path(__file__).resolve().parent.parent / "console"
router = APIRouter(tags=["console"], responses=RESPONSES)
# The views count against the key's rate limit like every other route (the page and its files do not).
views = APIRouter(tags=["console"], responses=COUNTED, dependencies=[Depends(entitlements.counted)])
QUANTILES = [q / 100 for q in range(0, 101, 5)]


@router.get("/console", include_in_schema=False)
def page():
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/console/{name}", include_in_schema=False)
def asset(name: str):
    files = {p.name: p for p in STATIC.iterdir() if p.suffix in (".js", ".css", ".svg")}
    if name not in files:
        return RedirectResponse("/console")
    return FileResponse(files[name])


def _teacher_share(who: str | None, window_s: int) -> dict:
    """Jobs that finished in the window (the caller's own, unless an operator's), and how many the teacher took."""
    from adq.core.status import JobStatus
    from adq.jobs.db.models import Job
    from adq.jobs.db.session import session_scope

    since = datetime.now(UTC) - timedelta(seconds=window_s)
    stmt = select(func.count(), func.sum(case((Job.teacher_used.is_(True), 1), else_=0))).where(
        Job.status == JobStatus.SUCCEEDED, Job.finished_at >= since
    )
    if who is not None:
        stmt = stmt.where(Job.owner == who)
    with session_scope() as s:
        jobs, teacher = s.execute(stmt).one()
    jobs, teacher = int(jobs or 0), int(teacher or 0)
    return {"window_s": window_s, "jobs": jobs, "teacher": teacher, "share": teacher / jobs if jobs else None}


def _own_keys(who: str) -> dict:
    """The caller's own live tau per calibration key, from its own scores only (what key_report is for the pool)."""
    from adq.control.live import own_distributions

    out = {}
    for key, dist in own_distributions(who).items():
        k = get_preset(key.split(":", 1)[0]).k
        out[key] = {"n": dist.n, "k": k, "live_tau": float(dist.get_quantile(k / 100)), "drift": None}
    return out


@views.get("/v1/console/now")
def now(who: Reader):
    """The teacher's share of recent jobs and live tau against the calibration per key: a tenant's key sees its
    own jobs and its own scores only (``queues`` and ``control`` are null); an operator's key also sees the queue
    depths per stage and priority step, the controller's state and every key's pooled live tau."""
    from dataclasses import asdict

    from adq.gateway.control import current
    from adq.jobs.db import calibrations
    from adq.tasks.broker import queue_depths
    from adq.tasks.controller import key_report

    operator = who is None
    state = current() if operator else None
    keys = []
    for key, row in sorted((key_report() if operator else _own_keys(who)).items()):
        preset, digest = key.split(":", 1)
        cal = calibrations.latest(preset, digest)
        prior = calibrations.percentiles(cal.id).tau(row["k"]) if cal is not None else None
        keys.append({"key": key, "preset": preset, **row, "calibrated_tau": prior})
    window = get_settings().live_tau_window_s
    return {
        "at": time.time(),
        "queues": queue_depths() if operator else None,
        "control": asdict(state) if state is not None else None,
        "keys": keys,
        "teacher_share": _teacher_share(who, window),
        "preset_k": {k["preset"]: get_preset(k["preset"]).k for k in keys},
    }


@views.get("/v1/console/calibrations")
def calibration_list(who: Reader):
    """The newest calibration of each preset and settings, with its percentiles, tau at the preset's k, and the
    live distribution of the same key over the window (quantiles every 5 %), to draw one over the other."""
    from adq.control.live import own_distributions, window_distributions
    from adq.jobs.db.models import Calibration
    from adq.jobs.db.session import session_scope
    from adq.method.presets import all_presets

    with session_scope() as s:
        newest = select(func.max(Calibration.id)).group_by(Calibration.preset, Calibration.settings_hash)
        rows = list(s.scalars(select(Calibration).where(Calibration.id.in_(newest)).order_by(Calibration.id.desc())))
        rows = [
            (r.id, r.preset, r.settings_hash, r.student_settings, r.percentiles, r.n_samples, r.created_at)
            for r in rows
        ]
    live = window_distributions() if who is None else own_distributions(who)  # a tenant: its own scores only
    presets = all_presets()
    out = []
    for cal_id, preset, digest, settings, percentiles, n, created in rows[:50]:
        values = {int(k): float(v) for k, v in percentiles.items() if k.isdigit()}
        k = presets[preset].k if preset in presets else 50
        dist = live.get(f"{preset}:{digest}")
        out.append(
            {
                "id": cal_id,
                "preset": preset,
                "settings": settings,
                "n_samples": n,
                "created_at": created.isoformat() if created else None,
                "percentiles": values,
                "k": k,
                "tau": values.get(k),
                "live": None
                if dist is None or dist.is_empty()
                else {"n": dist.n, "quantiles": [float(dist.get_quantile(q)) for q in QUANTILES]},
            }
        )
    return {"calibrations": out}

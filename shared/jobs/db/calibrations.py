"""Calibration rows, and finding the one that matches a job's student settings."""

from __future__ import annotations

import time

from sqlalchemy import select

from adq.core import process
from adq.core.config import get_settings
from adq.core.errors import CalibrationError
from adq.jobs.db.models import Calibration
from adq.jobs.db.session import session_scope
from adq.method import percentiles as cal
from adq.method.params import JobParams
from adq.method.presets import get_preset, settings_hash


def record(student_settings: dict, percentiles: cal.Percentiles, *, n_samples: int | None, source: str) -> int:
    row = Calibration(
        preset=student_settings["preset"],
        settings_hash=settings_hash(student_settings),
        student_settings=student_settings,
        percentiles=percentiles.to_json(),
        n_samples=n_samples,
        source=source[:512],
    )
    with session_scope() as s:
        s.add(row)
        s.flush()
        row_id = row.id
    _latest().clear()  # this process sees its own new calibration at once; others within LATEST_CACHE_S
    return row_id


def percentiles(calibration_id: int) -> cal.Percentiles:
    """A recorded calibration's percentiles (rows never change, so each is read once per process and database)."""
    # Keyed by the database too: ids restart in every database, and one process may meet several (tests, tools).
    key = ("calibration", get_settings().effective_database_url, calibration_id)
    return process.once(key, lambda: _read(calibration_id))


def _read(calibration_id: int) -> cal.Percentiles:
    with session_scope() as s:
        row = s.get(Calibration, calibration_id)
        if row is None:
            raise CalibrationError(f"no calibration with id {calibration_id}")
        return cal.parse(row.percentiles)


LATEST_CACHE_S = 5.0  # every submit needs its calibration: one query per key every few seconds, not per job


def _latest() -> dict[tuple[str, str, str], tuple[float, Calibration]]:
    return process.once(("cache", "latest calibrations"), dict)


def latest(preset: str, digest: str) -> Calibration | None:
    key = (get_settings().effective_database_url, preset, digest)
    hit = _latest().get(key)
    if hit is not None and time.monotonic() - hit[0] < LATEST_CACHE_S:
        return hit[1]
    with session_scope() as s:
        row = s.scalars(
            select(Calibration)
            .where(Calibration.preset == preset, Calibration.settings_hash == digest)
            .order_by(Calibration.id.desc())
            .limit(1)
        ).one_or_none()
    if row is not None:  # a miss is not cached: the first calibration of a key is used as soon as it exists
        _latest()[key] = (time.monotonic(), row)
    return row


def _diff(expected: dict, found: dict) -> str:
    keys = sorted(set(expected) | set(found))
    return ", ".join(
        f"{k}: calibrated {found.get(k)!r}, requested {expected.get(k)!r}"
        for k in keys
        if expected.get(k) != found.get(k)
    )


def for_job(params: JobParams) -> tuple[int, cal.Percentiles]:
    """The calibration recorded for exactly these student settings. A preset's shipped percentiles are imported on
    first use when they were sampled under the same settings; otherwise the job is refused."""
    wanted = params.student_settings()
    digest = settings_hash(wanted)
    row = latest(params.preset, digest)
    if row is not None:
        return row.id, cal.parse(row.percentiles)
    path = get_preset(params.preset).percentiles_path
    shipped = cal.load(path) if path is not None and path.is_file() else None
    if shipped is not None:
        found = shipped.meta.get("student_settings") or {}
        if settings_hash(found) == digest:
            return record(found, shipped, n_samples=shipped.meta.get("n_samples"), source=str(path)), shipped
        raise CalibrationError(
            f"preset {params.preset!r} has no calibration for these student settings ({_diff(wanted, found)}); "
            f"run `adq calibrate --preset {params.preset}{_mode_flags(params)}` with the serving settings first"
        )
    raise CalibrationError(
        f"preset {params.preset!r} has no calibration{_mode_of(params)}; "
        f"run `adq calibrate PROMPTS --preset {params.preset}{_mode_flags(params)}`"
    )


def _mode_of(params: JobParams) -> str:
    return "" if params.mode == "text2image" else f" for its {params.mode} mode"


def _mode_flags(params: JobParams) -> str:
    """Each mode is calibrated on its own (image-to-image scores do not follow text-to-image's)."""
    flags = ""
    if (params.width, params.height) != tuple(get_preset(params.preset).student_size):  # a size of the job's own
        flags += f" --width {params.width} --height {params.height}"
    flags += " --image IMAGES" if params.init_image else ""
    flags += f" --strength {params.strength:g}" if params.init_image else ""
    return flags + (" --control IMAGES" if params.control_image else "")

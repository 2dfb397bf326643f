"""The live student-score distribution, per calibration key (preset + student-settings hash), shared by every
student worker through the database.

Each worker adds its scores to a KLL quantile sketch (Apache DataSketches) per time bucket and writes it to the
``score_sketches`` table at most every ``ADQ_LIVE_FLUSH_S``. A reader merges the sketches of the buckets inside the
window, everyone's, with its own unflushed scores on top, so a worker's view lags the others' by at most one flush.
KLL sketches merge exactly (the merge is the sketch of the union), so no percentile arithmetic is written here."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from datasketches import kll_floats_sketch
from sqlalchemy import delete, select

from shared.core.config import get_settings
from shared.jobs.db.models import ScoreSketch
from shared.jobs.db.session import session_scope

SKETCH_K = 200  # KLL accuracy parameter: rank error about 1.3 % at the 99 % level, about 2.5 KB per sketch
BUCKETS_PER_WINDOW = 10


def new_sketch() -> kll_floats_sketch:
    return kll_floats_sketch(SKETCH_K)


def merge_all(blobs) -> kll_floats_sketch:
    merged = new_sketch()
    for blob in blobs:
        merged.merge(kll_floats_sketch.deserialize(blob))
    return merged


class LiveScores:
    """One process's writer and reader of the live distribution."""

    def __init__(self, holder: str):
        s = get_settings()
        self.holder = holder[:255]
        self.window_s, self.flush_s = s.live_tau_window_s, s.live_flush_s
        self.bucket_s = max(1, self.window_s // BUCKETS_PER_WINDOW)
        self._local: dict[tuple[str, int], kll_floats_sketch] = {}
        self._dirty: set[tuple[str, int]] = set()
        self._last_flush = 0.0
        self._others: dict[str, tuple[float, kll_floats_sketch]] = {}  # key -> (read at, merged sketch)

    def _bucket(self, now: float) -> int:
        return int(now // self.bucket_s) * self.bucket_s

    def _oldest(self, now: float) -> int:
        return self._bucket(now - self.window_s) + self.bucket_s

    def record(self, key: str, score: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        slot = (key, self._bucket(now))
        self._local.setdefault(slot, new_sketch()).update(float(score))
        self._dirty.add(slot)
        if now - self._last_flush >= self.flush_s:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Write this worker's changed sketches; forget its buckets that left the window."""
        now = time.time() if now is None else now
        stamp = datetime.fromtimestamp(now, UTC)
        with session_scope() as s:
            for key, bucket in sorted(self._dirty):
                sk = self._local[(key, bucket)]
                # Only this process writes rows with its holder, so a merge (read, then insert or update) races
                # with no one.
                s.merge(
                    ScoreSketch(
                        key=key, bucket=bucket, holder=self.holder, n=sk.n, sketch=sk.serialize(), updated_at=stamp
                    )
                )
            s.execute(delete(ScoreSketch).where(ScoreSketch.bucket < self._bucket(now - 2 * self.window_s)))
        self._dirty.clear()
        self._last_flush = now
        oldest = self._oldest(now)
        self._local = {slot: sk for slot, sk in self._local.items() if slot[1] >= oldest}

    def _others_sketch(self, key: str, now: float) -> kll_floats_sketch:
        cached = self._others.get(key)
        if cached is not None and now - cached[0] < self.flush_s:
            return cached[1]
        with session_scope() as s:
            blobs = s.scalars(
                select(ScoreSketch.sketch).where(
                    ScoreSketch.key == key, ScoreSketch.bucket >= self._oldest(now), ScoreSketch.holder != self.holder
                )
            ).all()
        merged = merge_all(blobs)
        self._others[key] = (now, merged)
        return merged

    def distribution(self, key: str, now: float | None = None) -> kll_floats_sketch:
        """Every score of the window: the others' flushed sketches and this worker's own, unflushed included."""
        now = time.time() if now is None else now
        merged = new_sketch()
        merged.merge(self._others_sketch(key, now))
        oldest = self._oldest(now)
        for (k, bucket), sk in self._local.items():
            if k == key and bucket >= oldest:
                merged.merge(sk)
        return merged


def window_distributions(now: float | None = None) -> dict[str, kll_floats_sketch]:
    """Every key's distribution over the window, as a reader with no scores of its own sees it (the controller)."""
    s = get_settings()
    now = time.time() if now is None else now
    bucket_s = max(1, s.live_tau_window_s // BUCKETS_PER_WINDOW)
    oldest = int((now - s.live_tau_window_s) // bucket_s) * bucket_s + bucket_s
    with session_scope() as session:
        rows = session.execute(select(ScoreSketch.key, ScoreSketch.sketch).where(ScoreSketch.bucket >= oldest)).all()
    by_key: dict[str, list[bytes]] = {}
    for key, blob in rows:
        by_key.setdefault(key, []).append(blob)
    return {key: merge_all(blobs) for key, blobs in by_key.items()}


def ks_statistic(live: kll_floats_sketch, prior_values: dict[int, float]) -> float:
    """Kolmogorov-Smirnov distance between the live distribution and the calibration's: the largest gap between
    the live rank of each calibrated percentile and the percentile itself."""
    if live.is_empty():
        return float("nan")
    return max(abs(live.get_rank(v) - k / 100) for k, v in prior_values.items() if 0 < k < 100)


def forget(key: str | None = None) -> int:
    """Drop the live scores (of one key, or all): after a recalibration, or between benchmark cases, so the next
    decisions start from the calibration prior again. Returns the sketches deleted."""
    with session_scope() as s:
        stmt = delete(ScoreSketch) if key is None else delete(ScoreSketch).where(ScoreSketch.key == key)
        return s.execute(stmt).rowcount

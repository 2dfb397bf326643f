"""The live student-score distribution, per calibration key (preset + student-settings hash), shared by every
student worker through the database.

Each worker adds its scores to a KLL quantile sketch (Apache DataSketches) per time bucket and writes it to the
``score_sketches`` table at most every ``ADQ_LIVE_FLUSH_S``. A reader merges the sketches of the buckets inside the
window, everyone's, with its own unflushed scores on top, so a worker's view lags the others' by at most one flush.
KLL sketches merge exactly (the merge is the sketch of the union), so no percentile arithmetic is written here.

Sketches are kept per API key too (the stored key is ``calibration key|owner tag``), so that no tenant steers the tau
another one sees: a job's tau comes from its own key's scores once there are enough of them, and before that from
the pooled window, in which each key weighs at most ``ADQ_LIVE_KEY_MAX_SHARE`` (adq.control.fairshare)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
from datasketches import kll_floats_sketch
from sqlalchemy import delete, select

from adq.control.fairshare import capped_weights, owner_tag
from adq.core.config import get_settings
from adq.jobs.db.models import ScoreSketch
from adq.jobs.db.session import session_scope

SKETCH_K = 200  # KLL accuracy parameter: rank error about 1.3 % at the 99 % level, about 2.5 KB per sketch
BUCKETS_PER_WINDOW = 10


def new_sketch() -> kll_floats_sketch:
    return kll_floats_sketch(SKETCH_K)


def stored_key(key: str, owner: str | None) -> str:
    return f"{key}|{owner_tag(owner)}"


def split_key(stored: str) -> tuple[str, str]:
    key, _, tag = stored.rpartition("|")
    return (key, tag) if key else (stored, "")


def scaled(sketch: kll_floats_sketch, weight: float) -> kll_floats_sketch:
    """A sketch of the same distribution that counts ``weight`` scores: its quantiles at evenly spaced ranks."""
    n = int(round(weight))
    if n >= sketch.n:
        return sketch
    out = new_sketch()
    if n > 0:
        out.update(np.asarray(sketch.get_quantiles(list((np.arange(n) + 0.5) / n)), dtype=np.float32))
    return out


def pooled(by_owner: dict[str, kll_floats_sketch], share: float) -> kll_floats_sketch:
    """The keys' sketches merged, each scaled down to its capped weight."""
    weights = capped_weights({tag: sk.n for tag, sk in by_owner.items()}, share)
    merged = new_sketch()
    for tag, weight in weights.items():
        merged.merge(scaled(by_owner[tag], weight))
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

    def record(self, key: str, score: float, now: float | None = None, owner: str | None = None) -> None:
        now = time.time() if now is None else now
        slot = (stored_key(key, owner), self._bucket(now))
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

    def _others_sketches(self, key: str, now: float) -> dict[str, kll_floats_sketch]:
        cached = self._others.get(key)
        if cached is not None and now - cached[0] < self.flush_s:
            return cached[1]
        with session_scope() as s:
            rows = s.execute(
                select(ScoreSketch.key, ScoreSketch.sketch).where(
                    ScoreSketch.key.startswith(f"{key}|", autoescape=True),
                    ScoreSketch.bucket >= self._oldest(now),
                    ScoreSketch.holder != self.holder,
                )
            ).all()
        merged = per_owner(rows, key)
        self._others[key] = (now, merged)
        return merged

    def by_owner(self, key: str, now: float | None = None) -> dict[str, kll_floats_sketch]:
        """Every score of the window per owner tag: the others' flushed sketches and this worker's own."""
        now = time.time() if now is None else now
        out: dict[str, kll_floats_sketch] = {}
        for tag, sk in self._others_sketches(key, now).items():
            out.setdefault(tag, new_sketch()).merge(sk)
        oldest = self._oldest(now)
        for (stored, bucket), sk in self._local.items():
            k, tag = split_key(stored)
            if k == key and bucket >= oldest:
                out.setdefault(tag, new_sketch()).merge(sk)
        return out

    def distribution(self, key: str, now: float | None = None, owner: str | None = None) -> kll_floats_sketch:
        """The scores a job of ``owner`` is ranked among: its own key's once there are enough of them (no other
        tenant moves them), else the pooled window with each key's weight capped."""
        sketches = self.by_owner(key, now)
        own = sketches.get(owner_tag(owner)) if owner is not None else None
        if own is not None and own.n >= get_settings().live_tau_min_scores:
            return own
        return pooled(sketches, get_settings().live_key_max_share)


def _oldest_bucket(now: float | None) -> int:
    """The first bucket inside the window ending at ``now``, as a reader with no scores of its own counts it."""
    s = get_settings()
    now = time.time() if now is None else now
    bucket_s = max(1, s.live_tau_window_s // BUCKETS_PER_WINDOW)
    return int((now - s.live_tau_window_s) // bucket_s) * bucket_s + bucket_s


def window_distributions(now: float | None = None) -> dict[str, kll_floats_sketch]:
    """Every key's distribution over the window, as a reader with no scores of its own sees it (the controller)."""
    s = get_settings()
    with session_scope() as session:
        rows = session.execute(
            select(ScoreSketch.key, ScoreSketch.sketch).where(ScoreSketch.bucket >= _oldest_bucket(now))
        ).all()
    by_key: dict[str, list[tuple[str, bytes]]] = {}
    for stored, blob in rows:
        by_key.setdefault(split_key(stored)[0], []).append((stored, blob))
    share = s.live_key_max_share
    return {key: pooled(per_owner(pairs, key), share) for key, pairs in by_key.items()}


def own_distributions(owner: str | None, now: float | None = None) -> dict[str, kll_floats_sketch]:
    """One API key's own scores over the window, per calibration key: what a tenant may see of live tau."""
    suffix = f"|{owner_tag(owner)}"
    with session_scope() as session:
        rows = session.execute(
            select(ScoreSketch.key, ScoreSketch.sketch).where(
                ScoreSketch.bucket >= _oldest_bucket(now), ScoreSketch.key.endswith(suffix)
            )
        ).all()
    out: dict[str, kll_floats_sketch] = {}
    for stored, blob in rows:
        out.setdefault(split_key(stored)[0], new_sketch()).merge(kll_floats_sketch.deserialize(blob))
    return out


def per_owner(rows, key: str) -> dict[str, kll_floats_sketch]:
    """(stored key, blob) rows of one calibration key, merged per owner tag."""
    out: dict[str, kll_floats_sketch] = {}
    for stored, blob in rows:
        k, tag = split_key(stored)
        if k == key:
            out.setdefault(tag, new_sketch()).merge(kll_floats_sketch.deserialize(blob))
    return out


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
        if key is None:
            return s.execute(delete(ScoreSketch)).rowcount
        return s.execute(delete(ScoreSketch).where(ScoreSketch.key.startswith(f"{key}|", autoescape=True))).rowcount

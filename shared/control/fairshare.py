"""No API key steers what the others share: capped weights for pooled inputs (the live score window, the
controller's requested k).

A key's weight is its count, capped so that no key is more than ``share`` of the pooled total (or an equal share,
when there are too few keys for ``share`` to be reachable). A flood therefore counts as one heavy key, not as the
whole window."""

from __future__ import annotations

from adq.jobs.priority import owner_tag

__all__ = ["capped_mean", "capped_weights", "owner_tag"]

# Bisection steps for the cap: 2^-60 of the largest count, far below one score
_STEPS = 60


def capped_weights(counts: dict[str, float], share: float) -> dict[str, float]:
    """Each key's weight, ``min(count, c)``, for the largest cap ``c`` under which no key weighs more than
    ``share`` of the total. With one key (or none) nothing is capped."""
    live = {k: float(n) for k, n in counts.items() if n > 0}
    if len(live) <= 1:
        return dict(live)
    share = max(share, 1.0 / len(live))
    if max(live.values()) <= share * sum(live.values()):
        return live

    # share * sum(min(n, c)) / c falls as c grows, so the largest c where it is still >= 1 is found by bisection
    def fits(c: float) -> bool:
        return share * sum(min(n, c) for n in live.values()) >= c

    lo, hi = min(live.values()), max(live.values())
    for _ in range(_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return {k: min(n, lo) for k, n in live.items()}


def capped_mean(values: dict[str, tuple[float, float]], share: float) -> float | None:
    """The mean over keys of ``(count, mean)`` pairs, each key weighted by its capped count."""
    weights = capped_weights({k: n for k, (n, _) in values.items()}, share)
    total = sum(weights.values())
    if total <= 0:
        return None
    return sum(weights[k] * values[k][1] for k in weights) / total

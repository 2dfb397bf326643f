"""Paired statistics for comparing two settings graded on the same prompts and seeds (the quality and editing
benchmarks, the tune's frontier and its held-out check)."""

from __future__ import annotations

import numpy as np


def paired_se(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of mean(a - b) over the pairs."""
    d = np.asarray(a, float) - np.asarray(b, float)
    return float(d.std(ddof=1) / np.sqrt(len(d)))


def paired_bootstrap_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0):
    """Percentile bootstrap CI of mean(a - b), resampling prompts (the pairs) with replacement: both sides were
    graded on the same prompts and seeds, so the pairing is what the interval must keep."""
    d = np.asarray(a, float) - np.asarray(b, float)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for i in range(0, n_boot, 200):  # in slices: 200 x n indices at a time keeps memory small at n = 2,000+
        idx = rng.integers(0, d.size, (min(200, n_boot - i), d.size))
        means[i : i + idx.shape[0]] = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)

"""The quality benchmark's paired bootstrap interval."""

import numpy as np

from adq.method.stats import paired_bootstrap_ci


def test_interval_covers_the_difference_and_narrows_with_more_prompts():
    rng = np.random.default_rng(0)
    widths = []
    for n in (500, 2000):
        base = rng.random(n)
        a, b = base + 0.03 + rng.normal(0, 0.1, n), base + rng.normal(0, 0.1, n)  # paired: a shared per-prompt term
        lo, hi = paired_bootstrap_ci(a, b)
        assert lo < 0.03 < hi and lo > 0  # a true gain of 0.03 is found, and excluded from zero
        widths.append(hi - lo)
    assert widths[1] < 0.6 * widths[0]  # four times the prompts: about half the width


def test_pairing_matters():
    rng = np.random.default_rng(1)
    base = rng.random(1000) * 4  # per-prompt difficulty swamps the gain unless the pairs are kept
    a, b = base + 0.02 + rng.normal(0, 0.05, 1000), base + rng.normal(0, 0.05, 1000)
    lo, _ = paired_bootstrap_ci(a, b)
    assert lo > 0
    assert paired_bootstrap_ci(a, a) == (0.0, 0.0)

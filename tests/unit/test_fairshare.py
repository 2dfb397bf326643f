"""Capped weights: no key is more than its share of a pooled input, and nothing is capped without need."""

import pytest

from adq.control.fairshare import capped_mean, capped_weights, owner_tag


def test_one_key_or_a_balanced_mix_is_left_alone():
    assert capped_weights({"a": 500}, 0.25) == {"a": 500}
    balanced = {c: 100 for c in "abcde"}
    assert capped_weights(balanced, 0.25) == balanced
    assert capped_weights({"a": 0, "b": 7}, 0.25) == {"b": 7}


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5])
def test_a_flood_is_cut_to_its_share(share):
    counts = {"flood": 100_000, **{f"k{i}": 100 for i in range(9)}}
    w = capped_weights(counts, share)
    assert w["flood"] / sum(w.values()) == pytest.approx(share, abs=1e-6)
    assert all(w[f"k{i}"] == 100 for i in range(9))


def test_too_few_keys_for_the_share_weigh_the_same():
    w = capped_weights({"flood": 10_000, "small": 40}, 0.25)  # two keys cannot each be under a quarter
    assert w["flood"] == pytest.approx(40) and w["small"] == 40


def test_the_mean_follows_the_capped_weights():
    # 10,000 jobs at k=100 from one key against 100 at k=10 from each of three others
    values = {"flood": (10_000, 100.0), "a": (100, 10.0), "b": (100, 10.0), "c": (100, 10.0)}
    assert capped_mean(values, 0.25) == pytest.approx(10 + 0.25 * 90)
    assert capped_mean({}, 0.25) is None


def test_owner_tags_are_short_fixed_and_distinct():
    tags = {owner_tag(name) for name in ["alice", "bob", "", None, "x" * 64]}
    assert len(tags) == 4 and all(len(t) == 12 for t in tags)  # None and "" are the same (auth off)

"""The shapes world: prompts, rendering, splits and tokenizer."""

import random

import numpy as np
import pytest

from adq.method.shapes import tokenizer, world


def test_prompts_parse_back_to_their_scene():
    for scene in world.all_scenes():
        assert world.parse(scene.prompt()) == scene
    with pytest.raises(ValueError, match="not a shapes-world prompt"):
        world.parse("a cat on a mat")


def test_splits_are_fixed_disjoint_and_complete():
    parts = {name: {s.prompt() for s in world.split(name)} for name in world.SPLIT_FRACTIONS}
    assert sum(len(p) for p in parts.values()) == len(world.all_scenes()) == 720
    assert not (parts["train"] & parts["heldout"]) and not (parts["val"] & parts["heldout"])
    assert [s.prompt() for s in world.split("heldout")][:3] == [s.prompt() for s in world.split("heldout")][:3]
    assert len(parts["heldout"]) == 144


def test_render_draws_what_the_prompt_says():
    scene = world.Scene("square", "red", "large", "top left", "black")
    img = np.asarray(world.render(scene))
    assert tuple(img[8, 8]) == world.COLORS["red"] and tuple(img[28, 28]) == world.BACKGROUNDS["black"]
    a, b = world.render(scene, random.Random(1)), world.render(scene, random.Random(1))
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_tokenizer_has_one_token_per_word(tmp_path):
    tok = tokenizer.build(tmp_path, world.vocabulary())
    for scene in world.all_scenes()[::37]:
        pieces = tok.convert_ids_to_tokens(tok(scene.prompt()).input_ids)[1:-1]
        assert [p.removesuffix("</w>") for p in pieces] == scene.prompt().split()


def test_an_editing_case_changes_exactly_one_attribute_of_a_heldout_scene():
    from dataclasses import astuple

    from bench.editing import EDITED, cases

    rows = cases("heldout", 60, seed=3)
    heldout = {s.prompt() for s in world.split("heldout")}
    for source, edited, what in rows:
        a, b = world.parse(source), world.parse(edited)
        changed = [name for name, x, y in zip(world.ATTRIBUTES, astuple(a), astuple(b)) if x != y]
        assert source in heldout and changed == [what]
    assert {what for *_, what in rows} == set(EDITED)

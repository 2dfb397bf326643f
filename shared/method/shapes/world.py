"""The shapes world: one coloured shape of some size at some position on a coloured background, 32x32 RGB.

Prompts read like "a large red triangle at the top left on a light blue background". Every attribute is parsed back
from the prompt, so a classifier can say whether an image shows what was asked. Splits are by attribute combination
(fixed by seed), so held-out prompts are combinations no model saw in training.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import astuple, dataclass

from PIL import Image, ImageDraw

SIZE = 32
SHAPES = ("circle", "square", "triangle")
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 190),
    "orange": (245, 140, 30),
}
SIZES = {"small": 8, "large": 16}
POSITIONS = {
    "top left": (0.27, 0.27),
    "top right": (0.73, 0.27),
    "center": (0.5, 0.5),
    "bottom left": (0.27, 0.73),
    "bottom right": (0.73, 0.73),
}
BACKGROUNDS = {"white": (245, 245, 245), "black": (20, 20, 20), "light blue": (170, 210, 240), "gray": (128, 128, 128)}
ATTRIBUTES = {
    "shape": SHAPES,
    "color": tuple(COLORS),
    "size": tuple(SIZES),
    "position": tuple(POSITIONS),
    "background": tuple(BACKGROUNDS),
}
SPLIT_SEED = 20231217
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1, "heldout": 0.2}


@dataclass(frozen=True)
class Scene:
    shape: str
    color: str
    size: str
    position: str
    background: str

    def prompt(self) -> str:
        return f"a {self.size} {self.color} {self.shape} at the {self.position} on a {self.background} background"

    def labels(self) -> tuple[int, ...]:
        return tuple(ATTRIBUTES[name].index(value) for name, value in zip(ATTRIBUTES, astuple(self)))


def parse(prompt: str) -> Scene:
    """Inverse of Scene.prompt (exact grammar, case-insensitive); raises ValueError naming the prompt otherwise."""
    scene = _BY_PROMPT.get(prompt.strip().lower())
    if scene is None:
        raise ValueError(f"not a shapes-world prompt: {prompt!r}")
    return scene


def all_scenes() -> list[Scene]:
    return [Scene(*combo) for combo in itertools.product(*ATTRIBUTES.values())]


_BY_PROMPT = {s.prompt(): s for s in all_scenes()}


def split(name: str) -> list[Scene]:
    """Scenes of one split; the same on every machine (seeded shuffle of the sorted combinations)."""
    scenes = all_scenes()
    random.Random(SPLIT_SEED).shuffle(scenes)
    n_train = round(len(scenes) * SPLIT_FRACTIONS["train"])
    n_val = round(len(scenes) * SPLIT_FRACTIONS["val"])
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "heldout": (n_train + n_val, len(scenes))}
    lo, hi = bounds[name]
    return scenes[lo:hi]


def render(scene: Scene, rng: random.Random | None = None) -> Image.Image:
    """Draw the scene; with an rng, jitter position, size and colour slightly (training data augmentation)."""
    jitter = (lambda a: rng.uniform(-a, a)) if rng else (lambda a: 0.0)
    bg = tuple(max(0, min(255, int(c + jitter(8)))) for c in BACKGROUNDS[scene.background])
    fg = tuple(max(0, min(255, int(c + jitter(12)))) for c in COLORS[scene.color])
    img = Image.new("RGB", (SIZE, SIZE), bg)
    draw = ImageDraw.Draw(img)
    cx, cy = POSITIONS[scene.position]
    cx, cy = cx * SIZE + jitter(1.5), cy * SIZE + jitter(1.5)
    r = SIZES[scene.size] / 2 * (1 + jitter(0.12))
    if scene.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif scene.shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return img


def vocabulary() -> list[str]:
    words = {"a", "at", "the", "on", "background"}
    for values in ATTRIBUTES.values():
        for v in values:
            words.update(v.split())
    return sorted(words)


def prompts(name: str, n: int | None = None, seed: int = 0) -> list[str]:
    """n prompts of a split, cycling through its scenes in a seeded order."""
    scenes = split(name)
    order = scenes[:]
    random.Random(seed).shuffle(order)
    n = len(order) if n is None else n
    return [order[i % len(order)].prompt() for i in range(n)]

"""A tiny safety filter for the tests: it flags an image whose red channel averages over 200 (the null models'
flat images make that a matter of the seed: seed 6 gives red 222 from the student; the null teacher inverts, so
seed 1 gives 218 from it)."""

from __future__ import annotations

PRESETS = """
null-safe:
  student: {source: "null:student", label: null student}
  teacher: {source: "null:teacher", label: null teacher}
  estimator: "null"
  student_steps: 1
  student_guidance: 0.0
  student_size: [8, 8]
  teacher_steps: 1
  teacher_guidance: 0.0
  teacher_size: [8, 8]
  sigma: 0.5
  safety: {kind: python, factory: "tests.plugins.safety:red_filter", placeholder: black}
"""


class RedFilter:
    def check(self, prompts: list[str], images: list) -> list[bool]:
        import numpy as np

        return [float(np.asarray(im.convert("RGB"))[..., 0].mean()) > 200 for im in images]


def red_filter():
    return RedFilter()

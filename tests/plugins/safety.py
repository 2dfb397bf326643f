"""A tiny safety filter for the tests: it flags an image whose red channel averages over 200 (the null models'
flat images make that a matter of the seed: seed 6 gives red 222 from the student; the null teacher inverts, so
seed 1 gives 218 from it)."""

from __future__ import annotations

# A presets-file entry of the null models at 8x8, for tests that add a field or two to it
NULL_ENTRY = """
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
"""
PRESETS = f"""
null-safe:{NULL_ENTRY}  safety: {{kind: python, factory: "tests.plugins.safety:red_filter", placeholder: black}}
"""
# The same, with a filter that takes its time: a kill test stops a worker inside it.
SLOW = PRESETS.replace("null-safe:", "null-slow-safe:").replace("safety:red_filter", "safety:slow_red_filter")


class RedFilter:
    def check(self, prompts: list[str], images: list) -> list[bool]:
        import numpy as np

        return [float(np.asarray(im.convert("RGB"))[..., 0].mean()) > 200 for im in images]


def red_filter():
    return RedFilter()


class SlowRedFilter(RedFilter):
    """Touches ADQ_TEST_SAFETY_MARK on entry, then sleeps ADQ_TEST_SAFETY_S before judging."""

    def check(self, prompts: list[str], images: list) -> list[bool]:
        import os
        import time
        from pathlib import Path

        if os.environ.get("ADQ_TEST_SAFETY_MARK"):
            Path(os.environ["ADQ_TEST_SAFETY_MARK"]).touch()
        time.sleep(float(os.environ.get("ADQ_TEST_SAFETY_S", "0")))
        return super().check(prompts, images)


def slow_red_filter():
    return SlowRedFilter()

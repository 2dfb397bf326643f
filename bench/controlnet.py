"""`adq bench controlnet`: controllable generation through the adaptive cascade on the shapes world, with the
mask ControlNet that `adq train-shapes-controlnet` trains (adq.method.shapes.controlnet).

The same flow as the editing benchmark (bench.editing): the student's scores on validation scenes set tau, held-out
scenes are routed by it, and each budget's adaptive grades are compared with the teacher alone at the route's mean
steps (bench.editing.matched)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np

from adq.core.resources import data_path
from adq.method.shapes import world
from adq.method.shapes.controlnet import FOLDER, mask_of
from bench.editing import matched, routed_below, write_result

KS = (20, 40, 60)  # the teacher shares measured


def measure(n: int = 300, n_val: int = 150, seed: int = 0, batch: int = 50, out: str | Path = "data/results") -> dict:
    from adq.method import percentiles as cal
    from adq.method.models import registry
    from adq.method.models.estimators import load_estimator
    from adq.method.presets import get_preset

    preset = get_preset("shapes-control")
    student, teacher = registry.student(preset.name), registry.teacher(preset.name)
    router, judge = registry.estimator(preset.name), load_estimator(preset.judge, student.device)
    S, T = preset.student_steps, preset.teacher_steps
    rng = random.Random(seed)

    def draw(split: str, count: int):
        scenes = world.split(split)
        return [scenes[rng.randrange(len(scenes))] for _ in range(count)]

    def generate(model, scenes, steps, guidance, offset, with_mask=True):
        from adq.method.models.device import generator

        view = model.views.get("text2image", with_mask)
        images = []
        for i in range(0, len(scenes), batch):
            chunk = scenes[i : i + batch]
            call = dict(num_inference_steps=steps, guidance_scale=guidance, width=32, height=32, output_type="pil")
            if with_mask:
                call |= {"image": [mask_of(world.render(s), s) for s in chunk]}
            gens = [generator(view.pipe.device, seed + offset + i + j) for j in range(len(chunk))]
            view.activate()
            images += view.pipe(prompt=[s.prompt() for s in chunk], generator=gens, **call).images
        return images

    t0 = time.perf_counter()
    val = draw("val", n_val)
    val_scores = router.score([s.prompt() for s in val], generate(student, val, S, preset.student_guidance, 10_000))
    percentiles = cal.from_scores(val_scores, {"preset": preset.name, "mode": "control"})
    test = draw("heldout", n)
    prompts = [s.prompt() for s in test]
    student_imgs = generate(student, test, S, preset.student_guidance, 0)
    scores = np.array(router.score(prompts, student_imgs))
    tg = preset.teacher_guidance
    grade = {
        "student": np.array(judge.score(prompts, student_imgs)),
        "student_no_control": np.array(judge.score(prompts, generate(student, test, S, 0.0, 0, False))),
        "teacher": np.array(judge.score(prompts, generate(teacher, test, T, tg, 0))),
        "teacher_no_control": np.array(judge.score(prompts, generate(teacher, test, T, tg, 0, False))),
    }
    rows = []

    def teacher_alone(steps: int) -> list[float]:
        return judge.score(prompts, generate(teacher, test, steps, tg, 0))

    for k in KS:
        rows.append(
            matched(k, routed_below(scores, percentiles.tau(k), k), grade["teacher"], grade, S, T, teacher_alone)
        )
    training = json.loads(data_path(*FOLDER, "TRAINING.json").read_text())
    result = {
        "what": "shapes control (mask ControlNet): adaptive against the teacher with the ControlNet at matched steps",
        "scenes": n,
        "calibration_scenes": n_val,
        "student_steps": S,
        "teacher_steps": T,
        "training": training,
        **{k: float(v.mean()) for k, v in grade.items() if "@" not in k},
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return write_result(Path(out) / "control.json", result)

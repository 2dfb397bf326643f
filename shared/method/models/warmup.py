"""No cold first job: a worker loads each preset it serves and runs one generation per role and size before it
consumes, so the first job pays neither the load nor the first call's allocations (nor, with ``ADQ_COMPILE``, a
compile: diffusers #11360, PyTorch #150706 report minutes per new resolution).

With ``ADQ_COMPILE=true`` each base's denoiser is compiled in place when it loads (``Module.compile``: the role
views that share it with ``from_pipe`` run the compiled one), and warmed here at every size the preset serves: its
``sizes`` field, else its student size alone. Jobs of other sizes are refused at submit (adq.method.sizes), since
each new shape would compile again inside a job's time limit.
"""

from __future__ import annotations

import logging
import time

from PIL import Image

from adq.method import cascade
from adq.method.params import resolve
from adq.method.presets import get_preset

log = logging.getLogger(__name__)
PROMPT = "a warm-up image"


def served_sizes(preset) -> list[tuple[int, int]]:
    """The sizes a worker warms: every size the preset lists, else its student size (and, compiled, all it serves)."""
    return [tuple(s) for s in preset.sizes] or [tuple(preset.student_size)]


def warm(pool: str, presets: list[str], models, run: bool = True) -> list[dict]:
    """Load and (``run``) run each preset's models of ``pool`` once per served size; what each took, for the log."""
    done = []
    for name in presets:
        preset = get_preset(name)
        spec = {"student": preset.student, "teacher": preset.teacher}.get(pool)
        if not run or (spec is not None and spec.source.startswith("null:")):
            # Loaded only: in the background (jobs must not queue behind a run), or a null model (a run would only
            # spend its simulated cost)
            with models.using(name):
                loaders = (models.student, models.estimator) if pool == "student" else (models.teacher,)
                for load in loaders:
                    load(name)
            log.info("warmed %s's %s: loaded, not run", name, pool)
            continue
        for width, height in served_sizes(preset):
            t0 = time.perf_counter()
            params = resolve(PROMPT, preset=name, width=width, height=height, seed=0)
            with models.using(name):
                if pool == "student":
                    image = cascade.generate(models.student(name), params).image
                    models.estimator(name).score([PROMPT], [image])
                elif pool == "teacher":
                    start = Image.new("RGB", (width, height), (128, 128, 128))
                    cascade.improve(models.teacher(name), start, params)
            done.append({"preset": name, "pool": pool, "size": f"{width}x{height}", "s": time.perf_counter() - t0})
            log.info("warmed %s's %s at %dx%d in %.2f s", name, pool, width, height, done[-1]["s"])
    return done

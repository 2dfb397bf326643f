"""`adq demo`: the whole system on embedded defaults, with no server: two worker pools, a batch of jobs, a table
and an HTML gallery."""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

from tqdm import tqdm

from adq.core.config import get_settings
from adq.core.resources import data_path
from adq.method.presets import get_preset
from adq.tasks import client

DEMO_PROMPTS = "demo.txt"  # under the data folder's prompts/ (adq.core.resources)
PRESET_PROMPTS = {"shapes": "shapes-demo.txt"}


def _table(rows: list[dict]) -> str:
    cols = ["prompt", "score", "tau", "tau_source", "effective_k", "teacher", "steps", "latency_s", "image"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    line = "  ".join(c.ljust(widths[c]) for c in cols)
    out = [line, "-" * len(line)]
    out += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(out)


def _gallery(rows: list[dict], views: list, out_dir: Path, preset: str) -> Path:
    cells = []
    for row, view in zip(rows, views):
        student = f'<img src="{html.escape(row["student_image"])}" title="student">' if row["teacher"] == "yes" else ""
        cells.append(
            f'<figure><img src="{html.escape(row["image"])}" title="final">{student}<figcaption>'
            f"{html.escape(view.prompt)}<br>score {row['score']} / tau {row['tau']} &middot; "
            f"{'teacher ' + view.strategy if view.teacher_used else 'student only'} &middot; {row['steps']} steps"
            f"</figcaption></figure>"
        )
    page = (
        "<!doctype html><meta charset=utf-8><title>adq demo</title><style>body{font-family:sans-serif}"
        "figure{display:inline-block;width:300px;margin:8px;vertical-align:top}"
        "img{width:128px;image-rendering:pixelated;margin-right:4px}</style>"
        "<p>Final image first; for jobs the teacher improved, the student's image beside it.</p>"
        f"<h1>adq demo: preset {html.escape(preset)}</h1>" + "\n".join(cells)
    )
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


POOLS = ("student", "teacher")
DEMO_PRESET = "shapes"  # trained and committed: recognisable images, scores that mean something


def run_demo(
    prompts_file: Path | None = None,
    out_dir: Path | None = None,
    k: int | None = None,
    timeout_s: float = 600.0,
    preset: str = DEMO_PRESET,
) -> list:
    from adq.jobs.db.migrate import upgrade
    from adq.method import percentiles
    from adq.workers.processes import Restarts, WorkerGroup, WorkerProcess

    out_dir = Path(out_dir or get_settings().home_dir / "demo")
    out_dir.mkdir(parents=True, exist_ok=True)
    upgrade()
    preset = get_preset(preset)
    if preset.student.source.startswith("tiny:"):
        from adq.method.models import tiny

        print("building the tiny models (once) ...", flush=True)
        tiny.ensure_built()
    prompts = percentiles.read_prompts(
        prompts_file or data_path("prompts", PRESET_PROMPTS.get(preset.name, DEMO_PROMPTS))
    )
    # The workers load the demo preset's models while they start (ADQ_PRESET), not in the first jobs.
    env = {**os.environ, "ADQ_PRESET": preset.name}
    workers = WorkerGroup(
        (WorkerProcess(pool, get_settings().home_dir / "logs", env=env) for pool in POOLS), restarts=Restarts()
    )
    try:
        workers.wait_ready()
        started = time.monotonic()
        views = [
            client.submit(p, preset=preset.name, k=k, seed=i)
            for i, p in enumerate(tqdm(prompts, desc="submitting", unit="job"))
        ]
        done = []
        for view in tqdm(views, desc="waiting", unit="job"):
            left = max(1.0, timeout_s - (time.monotonic() - started))
            done.append(client.wait(view.id, timeout=left, check=workers.check))
    finally:
        workers.stop()
    rows = []
    for view in done:
        images = {}
        for which, key in (("final", view.final_image_key), ("student", view.student_image_key)):
            if key:
                dest = out_dir / f"{view.id}-{which}.png"
                dest.write_bytes(client.image_bytes(view.id, which))
                images[which] = dest.name
        latency = _latency(view)
        rows.append(
            {
                "prompt": view.prompt[:48],
                "score": _fmt(view.student_score),
                "tau": _fmt(view.tau),
                "tau_source": view.tau_source or "-",
                "effective_k": "-" if view.effective_k is None else view.effective_k,
                "teacher": "yes" if view.teacher_used else "no",
                "steps": view.total_steps,
                "latency_s": latency,
                "image": images.get("final", "-"),
                "student_image": images.get("student", "-"),
                "status": view.status,
            }
        )
    print(_table(rows))
    gallery = _gallery(rows, done, out_dir, preset.name)
    used = sum(bool(v.teacher_used) for v in done)
    print(
        f"\n{len(done)} jobs, {sum(v.status == 'succeeded' for v in done)} succeeded, teacher used on {used} "
        f"(k={done[0].k if done else '-'}); mean steps {sum(v.total_steps or 0 for v in done) / max(1, len(done)):.2f}"
    )
    print(f"gallery: {gallery}")
    return done


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _latency(view) -> str:
    from datetime import datetime

    start, end = view.times.get("created_at"), view.times.get("finished_at")
    if not (start and end):
        return "-"
    return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.2f}"

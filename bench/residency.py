"""`adq bench residency`: many models on bounded memory, on the tiny twins of all five families.

1. Budget: one shuffled stream of jobs across the five families (generate, score, refine each), run with a budget
   that fits any two families and with none, side by side: resident bytes after every job (never above the
   budget), loads, evictions and the hit rate (jobs that loaded nothing).
2. Routing: the same stream over two worker processes, dealt in turn to whichever is next (no routing), against
   sent by group (families split between the workers so each group fits its budget): how many jobs ran on a
   worker that already held their models.
3. Warm-up: a fresh process times its first ten jobs of one preset, cold and after the start-up warm-up
   (adq.method.models.warmup): the first job against the tenth.

The worker processes run the registry the Celery workers run, not Celery itself: the routing decision is what is
compared, and both arms pay the same loads per miss.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time

FAMILIES = ["tiny", "tiny-sd15", "tiny-sd3", "tiny-flux", "tiny-zimage"]


def job(preset: str, seed: int, side: int | None = 32) -> None:
    """One job's calls at ``side`` (None: the preset's own size, the one its workers warm)."""
    from adq.method import cascade
    from adq.method.models import registry
    from adq.method.params import resolve

    size = {"width": side, "height": side} if side else {}
    # A prompt of its own per job, as in production: a tokenizer's cache of words seen must not favour later jobs
    prompt = f"a red fox in the snow, photograph number {seed}"
    p = resolve(prompt, preset=preset, seed=seed, teacher_guidance=1.0, **size)
    with registry.using(preset):
        image = cascade.generate(registry.student(preset), p).image
        registry.estimator(preset).score([p.prompt], [image])
        cascade.improve(registry.teacher(preset), image, p)


def stream(order: list[str]) -> dict:
    """Run ``order`` in this process; per job: hit (nothing loaded), resident bytes after it."""
    from adq.method.models import residency

    res = residency.current()
    rows = []
    for i, preset in enumerate(order):
        loads = res.loads
        job(preset, i)
        rows.append({"preset": preset, "hit": res.loads == loads, "resident": res.resident})
    return {"jobs": rows, "loads": res.loads, "evictions": res.evictions, "peak": res.peak, "budget": res.budget}


def warm_start(preset: str, warm: bool, n: int = 10) -> list[float]:
    from adq.method.models import registry, warmup

    if warm:
        warmup.warm("student", [preset], registry)
        warmup.warm("teacher", [preset], registry)
    seconds = []
    for i in range(n):
        t0 = time.perf_counter()
        job(preset, i, side=None)
        seconds.append(time.perf_counter() - t0)
    return seconds


def _child(task: dict, budget: int | None) -> subprocess.Popen:
    import os
    from pathlib import Path

    checkout = str(Path(__file__).resolve().parent.parent)  # bench/ is not installed: the child imports it from here
    path = os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "ADQ_MODEL_MEMORY_BYTES": str(budget or 0), "ADQ_TORCH_THREADS": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "bench.residency", json.dumps(task)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def _run_children(tasks: list[dict], budget: int | None) -> list[dict]:
    procs = [_child(t, budget) for t in tasks]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"a benchmark worker process failed (exit {p.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _sizes(unbounded: dict) -> dict[str, int]:
    """Each family's bytes, from the run with no budget: what the job that first used it added."""
    sizes, before = {}, 0
    for row in unbounded["jobs"]:
        sizes.setdefault(row["preset"], row["resident"] - before)
        before = row["resident"]
    return sizes


def _groups(sizes: dict[str, int], budget: int) -> list[list[str]]:
    """Families split between two workers, largest first onto the lighter one; each side fits its budget if it can."""
    sides: list[list[str]] = [[], []]
    for name in sorted(sizes, key=sizes.get, reverse=True):
        min(sides, key=lambda s: sum(sizes[n] for n in s)).append(name)
    return sides


def run(jobs: int = 60, seed: int = 5, out: str | None = None, plot_to: str | None = None) -> dict:
    order = [FAMILIES[i % len(FAMILIES)] for i in range(jobs)]  # every family at least twice (jobs >= 10)
    random.Random(seed).shuffle(order)
    (unbounded,) = _run_children([{"kind": "stream", "order": order}], None)
    sizes = _sizes(unbounded)
    budget = sum(sorted(sizes.values())[-2:])  # any two families fit
    dealt = [order[0::2], order[1::2]]
    groups = _groups(sizes, budget)
    routed = [[p for p in order if p in g] for g in groups]
    # The streams run side by side (nothing in them is timed); the warm-up arms one at a time, as they are timed.
    runs = _run_children([{"kind": "stream", "order": o} for o in [order, *dealt, *routed]], budget)
    budgeted, unrouted_runs, routed_runs = runs[0], runs[1:3], runs[3:5]
    warm = [_run_children([{"kind": "warm", "preset": "tiny-sd15", "warm": w}], None)[0] for w in (False, True)]
    report = {
        "families": sizes,
        "budget": budget,
        "jobs": jobs,
        "budgeted": budgeted,
        "unbounded": unbounded,
        "routing": {
            "groups": groups,
            "unrouted_hits": sum(r["hit"] for run_ in unrouted_runs for r in run_["jobs"]),
            "routed_hits": sum(r["hit"] for run_ in routed_runs for r in run_["jobs"]),
            "unrouted_loads": sum(r["loads"] for r in unrouted_runs),
            "routed_loads": sum(r["loads"] for r in routed_runs),
        },
        "warmup": {"cold_s": warm[0]["seconds"], "warm_s": warm[1]["seconds"]},
    }
    print(summary(report))
    if out:
        from pathlib import Path

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
    if plot_to:
        plot(report, plot_to)
    return report


def summary(r: dict) -> str:
    b, u, rt, w = r["budgeted"], r["unbounded"], r["routing"], r["warmup"]
    n = r["jobs"]
    hits = lambda s: sum(j["hit"] for j in s["jobs"])  # noqa: E731
    mib = lambda x: f"{x / 2**20:.1f} MiB"  # noqa: E731
    return "\n".join(
        [
            f"budget {mib(r['budget'])} (two of five families; all five: {mib(sum(r['families'].values()))})",
            f"  with budget: peak {mib(b['peak'])}, {b['loads']} loads, {b['evictions']} evictions, "
            f"hit rate {hits(b) / n:.0%}",
            f"  no budget:   peak {mib(u['peak'])}, {u['loads']} loads, 0 evictions, hit rate {hits(u) / n:.0%}",
            f"two workers, {n} jobs: {rt['unrouted_hits']} ran warm dealt in turn ({rt['unrouted_loads']} loads), "
            f"{rt['routed_hits']} routed by group {rt['groups']} ({rt['routed_loads']} loads)",
            f"first job / tenth: cold {w['cold_s'][0] / w['cold_s'][9]:.1f}x, "
            f"warmed {w['warm_s'][0] / w['warm_s'][9]:.2f}x ({w['warm_s'][0]:.3f} s vs {w['warm_s'][9]:.3f} s; "
            f"the median of jobs 2-10: {statistics.median(w['warm_s'][1:]):.3f} s)",
        ]
    )


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, key in (("no budget", "unbounded"), ("budget", "budgeted")):
        ax.plot([j["resident"] / 2**20 for j in report[key]["jobs"]], label=name, drawstyle="steps-post")
    ax.axhline(report["budget"] / 2**20, color="red", linestyle="--", label="ADQ_MODEL_MEMORY_BYTES")
    ax.set_xlabel("job (shuffled across five tiny families)")
    ax.set_ylabel("resident model bytes (MiB)")
    ax.set_title("Models held by one worker process")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _main() -> None:
    from adq.method.models.device import configure_torch

    configure_torch()
    task = json.loads(sys.argv[1])
    if task["kind"] == "stream":
        result = stream(task["order"])
    else:
        result = {"seconds": warm_start(task["preset"], task["warm"])}
    print(json.dumps(result))


if __name__ == "__main__":
    _main()

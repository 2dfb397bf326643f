"""`adq bench gpu` (scripts/gpu-bench.sh): images/s and peak memory of the real-size twins on a GPU.

For each family at its serving precision (SD1.5 and SDXL in float16, FLUX.1 in bfloat16, and SDXL in bfloat16
beside it), each side (512², 1024²) and each batch size, the student (4 steps) and the teacher (8 steps) are timed
once after a warm-up at that shape, with ``torch.cuda.max_memory_allocated`` as the peak. The weights are random:
they cost what trained ones cost. A time budget (default 540 s) stops the sweep and keeps what it measured, so the
command ends within a 10-minute lease; what was skipped is listed. It runs on the CPU too (``--device cpu``, tiny
sides and one family), which is how the tests smoke it: nothing in the tests needs a GPU."""

from __future__ import annotations

import time

from adq.core.errors import InputError
from adq.method.models import realsize
from bench.overhead import write_json

PLAN = [  # (family, dtype): each family at the precision it serves in, and SDXL in bf16 for comparison
    ("sd15", "float16"),
    ("sdxl", "float16"),
    ("flux", "bfloat16"),
    ("sdxl", "bfloat16"),
]
ROLES = {"student": (4, (1, 2, 4, 8, 16)), "teacher": (8, (1, 2, 4, 8))}  # steps, batch sizes


def pipeline(family: str, dtype: str, device):
    import tempfile
    from pathlib import Path

    import diffusers
    import torch

    from adq.method.models.tiny import write_tokenizer
    from adq.method.models.twins import t5_tokenizer

    parts = {name: realsize.build(family, name, meta=False) for name, _, _ in realsize.FAMILIES[family]}
    parts = {k: v.to(device=device, dtype=getattr(torch, dtype)) for k, v in parts.items()}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_tokenizer(Path(tmp))
    if family == "flux":
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
        return diffusers.FluxPipeline(**parts, tokenizer=clip, tokenizer_2=t5_tokenizer(), scheduler=scheduler)
    scheduler = diffusers.EulerDiscreteScheduler()
    if family == "sdxl":
        return diffusers.StableDiffusionXLPipeline(**parts, tokenizer=clip, tokenizer_2=clip, scheduler=scheduler)
    return diffusers.StableDiffusionPipeline(
        **parts, tokenizer=clip, scheduler=scheduler, safety_checker=None, feature_extractor=None
    )


def _time(pipe, batch: int, side: int, steps: int, device) -> tuple[float, int]:
    import torch

    call = dict(prompt=["a photo of a red fox"] * batch, height=side, width=side, num_inference_steps=steps)
    call |= dict(output_type="latent", guidance_scale=0.0)  # the decoder is timed in the full pass below
    cuda = device.type == "cuda"
    pipe(**call)  # warm-up at this shape
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    pipe(**{**call, "output_type": "pil"})
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, torch.cuda.max_memory_allocated() if cuda else 0


def run(
    device: str = "cuda",
    families: tuple[str, ...] = (),
    sides: tuple[int, ...] = (512, 1024),
    batches: tuple[int, ...] = (),
    budget_s: float = 540.0,
    out: str | None = None,
) -> dict:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("adq bench gpu needs a CUDA device (or --device cpu for a smoke run)")
    plan = [(f, d) for f, d in PLAN if not families or f in families]
    if dev.type == "cpu":
        plan = [(f, "float32") for f in dict.fromkeys(f for f, _ in plan)]
    started, rows, skipped = time.perf_counter(), [], []
    for family, dtype in plan:
        if time.perf_counter() - started > budget_s:
            skipped.append(f"{family} {dtype}: the time budget ran out")
            continue
        pipe = pipeline(family, dtype, dev)
        for side in sides:
            for role, (steps, sizes) in ROLES.items():
                for b in batches or sizes:
                    if time.perf_counter() - started > budget_s:
                        skipped.append(f"{family} {dtype} {side} {role} x{b}")
                        continue
                    try:
                        seconds, peak = _time(pipe, b, side, steps, dev)
                    except torch.OutOfMemoryError:
                        skipped.append(f"{family} {dtype} {side} {role} x{b}: out of memory")
                        torch.cuda.empty_cache()
                        break
                    rows.append(
                        {"family": family, "dtype": dtype, "side": side, "role": role, "steps": steps, "batch": b}
                        | {"seconds": seconds, "images_per_s": b / seconds, "peak_bytes": peak}
                    )
                    print(f"{family:<5} {dtype:<9} {side:>4}² {role:<7} x{b:<2} {b / seconds:7.2f} images/s, "
                          f"peak {peak / 2**30:6.2f} GiB", flush=True)  # fmt: skip
        del pipe
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    result = {"device": name, "rows": rows, "skipped": skipped, "seconds": round(time.perf_counter() - started, 1)}
    write_json(out, result)
    return result

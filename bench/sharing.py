"""`adq bench sharing`: parameter bytes a process holds when roles share one base, against each role loading its
own copy. Measured side by side in one run on the tiny family twins (weights built locally)."""

from __future__ import annotations

from adq.method.models import pipelines, precision, registry
from adq.method.presets import get_preset

FAMILY_PRESETS = ("tiny", "tiny-sd15", "tiny-sd3", "tiny-flux", "tiny-zimage")


def _separate(spec, role: str):
    """The role loaded alone: a process that did not share would hold this beside the others."""
    import diffusers

    from adq.method.models.weights import locate

    cls = getattr(diffusers, pipelines.ROLE_CLASSES[role])
    pipe = cls.from_pretrained(locate(spec.source, spec.label), dtype=precision.dtype_of("float32"))
    for lora in spec.lora:
        pipe.load_lora_weights(locate(lora.source, spec.label, marker=lora.weight_name), weight_name=lora.weight_name)
    return pipe


def measure() -> list[dict]:
    rows = []
    for name in FAMILY_PRESETS:  # the teacher worker: refine and regenerate
        registry.clear()
        teacher = registry.teacher(name)
        shared = pipelines.held_bytes([teacher.pipe, teacher.regenerator.pipe])
        p = get_preset(name)
        alone = pipelines.held_bytes([_separate(p.teacher, "image2image")]) + pipelines.held_bytes(
            [_separate(p.teacher, "text2image")]
        )
        rows.append({"case": f"{name}: teacher refine + regenerate", "shared": shared, "separate": alone})
    registry.clear()  # a LoRA student beside its teacher, in one process (the one-process cascade, calibrate)
    p = get_preset("tiny-sd15-lora")
    student, teacher = registry.student(p.name), registry.teacher(p.name)
    shared = pipelines.held_bytes([student.pipe, teacher.pipe])
    alone = pipelines.held_bytes([_separate(p.student, "text2image")]) + pipelines.held_bytes(
        [_separate(p.teacher, "image2image")]
    )
    rows.append({"case": "tiny-sd15-lora: LoRA student + teacher", "shared": shared, "separate": alone})
    registry.clear()
    return rows


def report(rows: list[dict]) -> str:
    lines = ["| case | shared (MB) | separate copies (MB) | ratio |", "|---|---|---|---|"]
    for r in rows:
        ratio = r["shared"] / r["separate"]
        lines.append(f"| {r['case']} | {r['shared'] / 1e6:.2f} | {r['separate'] / 1e6:.2f} | {ratio:.2f} |")
    return "\n".join(lines)

"""`adq bench realsize`: the real architectures of SD1.5, SDXL and FLUX.1 with random weights (adq.method.models
.realsize), measured on this machine, side by side in one run:

1. resident bytes per component, per role and per precision, counted on the meta device (FLUX's 12 B transformer
   does not fit in this machine's memory, and needs none to be counted);
2. one denoising step of the SD1.5 and SDXL UNets at 512² on the CPU in float32 (the GPU figures are
   scripts/gpu-bench.sh's), with the bytes the built UNet really holds beside the count;
3. sharing at real size: SD1.5's image-to-image pipeline made ``from_pipe`` the text-to-image one holds no second
   copy, and a rank-64 LoRA student on the teacher's base adds only its adapter."""

from __future__ import annotations

import time

from adq.method.models import realsize
from bench.overhead import write_json

ROLES = {  # how a preset of each class holds its two roles: separate bases, or a LoRA student on the teacher's
    "sd15": "separate",
    "sdxl": "separate (sdxl-turbo, lcm-sdxl) or shared (lcm-lora-sdxl)",
    "flux": "separate (flux-schnell-dev)",
}


def _bytes_table() -> list[dict]:
    rows = []
    for family in realsize.FAMILIES:
        parameters = sum(realsize.counts(family).values())
        for dtype in ("float32", "float16", "bfloat16"):
            per = realsize.resident_bytes(family, dtype)
            one = per.pop("total")
            rows.append(
                {"family": family, "dtype": dtype, "parameters": parameters, "components": per}
                | {"one_role_bytes": one, "two_roles_separate_bytes": 2 * one, "roles": ROLES[family]}
            )
    return rows


def _unet_step(family: str, side: int = 512, repeats: int = 2) -> dict:
    import torch

    unet = realsize.build(family, "unet", meta=False).eval()
    held = sum(t.untyped_storage().nbytes() for t in [*unet.parameters(), *unet.buffers()])
    latents = torch.randn(1, 4, side // 8, side // 8)
    width = unet.config.cross_attention_dim
    text = torch.randn(1, 77, width)
    extra = {}
    if family == "sdxl":  # SDXL's added conditions: the pooled text embedding and the size/crop ids
        extra["added_cond_kwargs"] = {"text_embeds": torch.randn(1, 1280), "time_ids": torch.randn(1, 6)}
    with torch.inference_mode():
        unet(latents, 999, encoder_hidden_states=text, **extra)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            unet(latents, 999, encoder_hidden_states=text, **extra)
            times.append(time.perf_counter() - t0)
    return {"family": family, "side": side, "dtype": "float32", "step_s": min(times), "held_bytes": held}


def _sharing() -> dict:
    import tempfile
    from pathlib import Path

    import diffusers
    from peft import LoraConfig

    from adq.method.models.pipelines import held_bytes
    from adq.method.models.tiny import write_tokenizer

    parts = {name: realsize.build("sd15", name, meta=False) for name, _, _ in realsize.FAMILIES["sd15"]}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = write_tokenizer(Path(tmp))
    scheduler = diffusers.EulerDiscreteScheduler()
    text2image = diffusers.StableDiffusionPipeline(
        **parts, tokenizer=tokenizer, scheduler=scheduler, safety_checker=None, feature_extractor=None
    )
    image2image = diffusers.StableDiffusionImg2ImgPipeline.from_pipe(text2image)
    base = held_bytes([text2image])
    both = held_bytes([text2image, image2image])
    lora = LoraConfig(r=64, lora_alpha=64, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    text2image.unet.add_adapter(lora, adapter_name="student")
    with_lora = held_bytes([text2image, image2image])
    return {
        "base_bytes": base,
        "text2image_and_image2image_bytes": both,
        "with_rank64_lora_bytes": with_lora,
        "lora_adapter_bytes": with_lora - base,
        "one_copy": both == base,
    }


def run(out: str | None = None, side: int = 512, families: tuple[str, ...] = ("sd15", "sdxl")) -> dict:
    t0 = time.perf_counter()
    result = {"resident": _bytes_table(), "steps": [_unet_step(f, side) for f in families]}
    result["sharing"] = _sharing()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    gib = 1024**3
    for r in result["resident"]:
        print(
            f"{r['family']:<5} {r['dtype']:<9} {r['parameters'] / 1e9:6.2f} B parameters: one role "
            f"{r['one_role_bytes'] / gib:6.2f} GiB, two separate roles {r['two_roles_separate_bytes'] / gib:6.2f} GiB"
        )
    for s in result["steps"]:
        print(f"{s['family']} UNet, one step at {side}² on the CPU (float32): {s['step_s']:.2f} s")
    sh = result["sharing"]
    print(
        f"SD1.5 at real size: base {sh['base_bytes'] / gib:.2f} GiB; with image-to-image from_pipe "
        f"{sh['text2image_and_image2image_bytes'] / gib:.2f} GiB (one copy: {sh['one_copy']}); a rank-64 LoRA "
        f"student adds {sh['lora_adapter_bytes'] / 2**20:.1f} MiB"
    )
    write_json(out, result)
    return result

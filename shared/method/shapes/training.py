"""Train the shapes world's models on the CPU, reproducibly by seed: `adq train-shapes`.

1. VAE (SDXL's AutoencoderKL, 32x32 -> 4x16x16) as an autoencoder on rendered scenes.
2. Teacher: two CLIP text encoders and a text-conditioned UNet, epsilon prediction, 10 % empty-prompt dropout so
   classifier-free guidance works; sampled with UniPC in 20-50 steps.
3. Student: latent consistency distillation of the guided teacher (DDIM solver, skip 20 of 1000 timesteps, EMA
   target), sampled with LCMScheduler in 1-4 steps.
4. Estimator and judge: two attribute classifiers with different architectures, seeds and data streams. The
   estimator routes jobs; the judge only grades benchmarks.
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from adq.method.models.tiny import assemble_sdxl
from adq.method.shapes import components as C
from adq.method.shapes import tokenizer as shapes_tokenizer
from adq.method.shapes import world

TEACHER_GUIDANCE = 3.0


def scenes_batch(rng: random.Random, scenes, n: int):
    picked = [rng.choice(scenes) for _ in range(n)]
    images = [world.render(s, rng) for s in picked]
    return C.to_tensor(images), [s.prompt() for s in picked], torch.tensor([s.labels() for s in picked])


@torch.enable_grad()  # workers switch grad off process-wide for inference
def train_vae(steps: int, seed: int, progress=True):
    torch.manual_seed(seed)
    rng, vae = random.Random(seed), C.vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3)
    scenes = world.split("train")
    for _ in tqdm(range(steps), desc="vae", disable=not progress):
        x, _, _ = scenes_batch(rng, scenes, 32)
        post = vae.encode(x).latent_dist
        loss = F.mse_loss(vae.decode(post.sample()).sample, x) + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    vae.eval()
    with torch.no_grad():
        x, _, _ = scenes_batch(rng, scenes, 256)
        z = vae.encode(x).latent_dist.mean
    vae.register_to_config(scaling_factor=float(1.0 / z.std()))
    return vae


def latent_dataset(vae, n: int, seed: int):
    rng = random.Random(seed + 1)
    xs, prompts = [], []
    with torch.no_grad():
        for _ in range(0, n, 256):
            x, p, _ = scenes_batch(rng, world.split("train"), 256)
            xs.append(vae.encode(x).latent_dist.mean * vae.config.scaling_factor)
            prompts += p
    return torch.cat(xs), prompts


def _cond(tok, te1, te2, prompts, drop: float, gen: torch.Generator):
    emb, pooled = C.encode(tok, te1, te2, prompts)
    if drop:
        keep = (torch.rand(len(prompts), generator=gen) >= drop).float()
        emb, pooled = emb * keep[:, None, None], pooled * keep[:, None]  # empty prompt = zeros (SDXL's default)
    return emb, pooled


@torch.enable_grad()  # workers switch grad off process-wide for inference
def train_teacher(latents, prompts, tok, steps: int, seed: int, batch: int = 48, progress=True):
    from diffusers import DDPMScheduler
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    te1, te2 = CLIPTextModel(C.text_config(len(tok))), CLIPTextModelWithProjection(C.text_config(len(tok)))
    unet, noise = C.unet(), DDPMScheduler(**{k: v for k, v in C.NOISE.items() if k != "timestep_spacing"})
    params = list(unet.parameters()) + list(te1.parameters()) + list(te2.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.05)
    bar = tqdm(range(steps), desc="teacher", disable=not progress)
    for _ in bar:
        idx = torch.randint(0, len(latents), (batch,), generator=gen)
        x0 = latents[idx]
        eps = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, 1000, (batch,), generator=gen)
        emb, pooled = _cond(tok, te1, te2, [prompts[i] for i in idx], 0.1, gen)
        pred = unet(
            noise.add_noise(x0, eps, t),
            t,
            emb,
            added_cond_kwargs={"text_embeds": pooled, "time_ids": C.time_ids(batch)},
        ).sample
        loss = F.mse_loss(pred, eps)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return te1.eval(), te2.eval(), unet.eval()


def _boundary(t: torch.Tensor, sigma_data: float = 0.5, scaling: float = 10.0):
    # The same scalings LCMScheduler applies at inference (timestep_scaling=10).
    s = t.float() * scaling
    return sigma_data**2 / (s**2 + sigma_data**2), s / (s**2 + sigma_data**2) ** 0.5


@torch.enable_grad()  # workers switch grad off process-wide for inference
def distill_student(
    latents,
    prompts,
    tok,
    te1,
    te2,
    teacher,
    steps: int,
    seed: int,
    batch: int = 32,
    progress=True,
    skip: int = 20,
    guidance: float = TEACHER_GUIDANCE,
):
    """Latent consistency distillation (Luo et al. 2023) of the guided teacher into a copy of its UNet."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    from diffusers import DDPMScheduler

    noise = DDPMScheduler(**{k: v for k, v in C.NOISE.items() if k != "timestep_spacing"})
    acp = noise.alphas_cumprod
    ddim_t = torch.arange(1, 1000 // skip + 1) * skip - 1  # 19, 39, ..., 999
    student, target = copy.deepcopy(teacher).train(), copy.deepcopy(teacher).eval()
    for p in list(teacher.parameters()) + list(target.parameters()):
        p.requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=2e-4, weight_decay=0.0)
    added = {"time_ids": C.time_ids(batch)}

    def x0_from_eps(eps, t, x):
        a = acp[t].view(-1, 1, 1, 1)
        return (x - (1 - a).sqrt() * eps) / a.sqrt()

    bar = tqdm(range(steps), desc="student (LCM)", disable=not progress)
    for _ in bar:
        idx = torch.randint(0, len(latents), (batch,), generator=gen)
        x0 = latents[idx]
        with torch.no_grad():
            emb, pooled = C.encode(tok, te1, te2, [prompts[i] for i in idx])
        k = torch.randint(0, len(ddim_t), (batch,), generator=gen)
        t_start = ddim_t[k]
        t_prev = (t_start - skip).clamp(min=0)
        x_t = noise.add_noise(x0, torch.randn(x0.shape, generator=gen), t_start)
        cs, co = (v.view(-1, 1, 1, 1) for v in _boundary(t_start))
        eps_s = student(x_t, t_start, emb, added_cond_kwargs=added | {"text_embeds": pooled}).sample
        pred = cs * x_t + co * x0_from_eps(eps_s, t_start, x_t)
        with torch.no_grad():
            eps_c = teacher(x_t, t_start, emb, added_cond_kwargs=added | {"text_embeds": pooled}).sample
            eps_u = teacher(
                x_t, t_start, torch.zeros_like(emb), added_cond_kwargs=added | {"text_embeds": torch.zeros_like(pooled)}
            ).sample
            eps_g = eps_u + guidance * (eps_c - eps_u)
            x0_g = x0_from_eps(eps_g, t_start, x_t)
            a_prev = torch.where(t_start - skip >= 0, acp[t_prev], torch.ones_like(acp[t_prev])).view(-1, 1, 1, 1)
            x_prev = a_prev.sqrt() * x0_g + (1 - a_prev).sqrt() * eps_g  # one DDIM step of the guided teacher
            eps_t = target(x_prev, t_prev, emb, added_cond_kwargs=added | {"text_embeds": pooled}).sample
            ct_s, ct_o = (v.view(-1, 1, 1, 1) for v in _boundary(t_prev))
            tgt = ct_s * x_prev + ct_o * x0_from_eps(eps_t, t_prev, x_prev)
        loss = (torch.sqrt((pred - tgt) ** 2 + 1e-3**2) - 1e-3).mean()  # pseudo-Huber, as in LCM
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pt, ps in zip(target.parameters(), student.parameters()):
                pt.mul_(0.95).add_(ps.detach(), alpha=0.05)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return student.eval()


@torch.enable_grad()  # workers switch grad off process-wide for inference
def train_classifier(widths, seed: int, steps: int, noise_std: float, progress=True, desc="classifier"):
    """Trained on jittered renders plus noise and blur, so it grades generated images, not only clean ones."""
    torch.manual_seed(seed)
    rng, net = random.Random(seed), C.AttributeNet(widths)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    scenes = world.all_scenes()  # classifiers see every combination: they grade, they do not generate
    for _ in tqdm(range(steps), desc=desc, disable=not progress):
        x, _, y = scenes_batch(rng, scenes, 64)
        x = x + noise_std * torch.rand(len(x), 1, 1, 1) * torch.randn_like(x)
        if rng.random() < 0.5:
            x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        loss = sum(F.cross_entropy(logits, y[:, i]) for i, logits in enumerate(net(x)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def save_classifier(net, folder: Path, widths, role: str) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(
        json.dumps({"widths": list(widths), "role": role, "attributes": world.ATTRIBUTES}, indent=1)
    )


ESTIMATOR_WIDTHS, JUDGE_WIDTHS = (32, 64, 96), (24, 48, 96)


def train_all(out: Path, seed: int = 0, scale: float = 1.0, progress: bool = True) -> dict:
    """Everything, into `out` (default data/models/shapes). `scale` multiplies every step count (tests use less)."""
    from diffusers import LCMScheduler, UniPCMultistepScheduler

    torch.set_num_threads(max(1, torch.get_num_threads()))
    timings, t0 = {}, time.perf_counter()
    steps = {
        k: max(1, int(v * scale))
        for k, v in {"vae": 400, "teacher": 3000, "student": 800, "estimator": 600, "judge": 600}.items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        tok = shapes_tokenizer.build(Path(tmp) / "tok", world.vocabulary())
    vae = train_vae(steps["vae"], seed, progress)
    timings["vae_s"] = time.perf_counter() - t0
    latents, prompts = latent_dataset(vae, max(256, int(12_288 * min(1.0, scale))), seed)
    te1, te2, teacher = train_teacher(latents, prompts, tok, steps["teacher"], seed + 2, progress=progress)
    timings["teacher_s"] = time.perf_counter() - t0 - sum(timings.values())
    student = distill_student(latents, prompts, tok, te1, te2, teacher, steps["student"], seed + 3, progress=progress)
    timings["student_s"] = time.perf_counter() - t0 - sum(timings.values())
    out.mkdir(parents=True, exist_ok=True)
    # fp16 on disk keeps the committed weights to a few MB; loading upcasts to fp32 on the CPU. The student ships
    # as a UNet that runs on the teacher's VAE and text encoders, as LCM-SDXL's UNet runs on SDXL-base.
    teacher_pipe = assemble_sdxl(vae, (te1, te2), tok, teacher, UniPCMultistepScheduler(**C.NOISE))
    teacher_pipe.to(torch.float16).save_pretrained(out / "teacher", safe_serialization=True)
    student.to(torch.float16).save_pretrained(out / "student-unet", safe_serialization=True)
    LCMScheduler(**C.NOISE).save_pretrained(out / "student-unet" / "scheduler")
    est = train_classifier(ESTIMATOR_WIDTHS, seed + 4, steps["estimator"], 0.3, progress, "estimator")
    save_classifier(est, out / "estimator", ESTIMATOR_WIDTHS, "estimator")
    timings["estimator_s"] = time.perf_counter() - t0 - sum(timings.values())
    judge = train_classifier(JUDGE_WIDTHS, seed + 5, steps["judge"], 0.5, progress, "judge")
    save_classifier(judge, out / "judge", JUDGE_WIDTHS, "judge")
    timings["judge_s"] = time.perf_counter() - t0 - sum(timings.values())
    timings["total_s"] = time.perf_counter() - t0
    (out / "TRAINING.json").write_text(
        json.dumps(
            {"seed": seed, "steps": steps, "seconds": timings, "torch_threads": torch.get_num_threads()}, indent=1
        )
    )
    return timings

"""`adq simulate --groups flux=0.3,sdxl=0.7`: a teacher pool per preset group, each scaled on its own queue.

Each group gets its share of the day's arrivals, its own bursts (a day of its own, seeded apart) and the KEDA
numbers that share sizes (adq.control.sizing), as the group's ScaledObject would have them (infra/k8s-groups):
a burst of FLUX jobs grows the FLUX pool and leaves the SDXL one alone. Beside them, the one shared pool that
serves every group, which assumes each replica holds every group's models warm (what a memory budget may not
allow: adq.method.models.residency); the difference is what routing to warm workers costs in GPU-hours.
"""

from __future__ import annotations

from dataclasses import replace

from adq.control.simulate import simulate
from adq.control.sizing import PolicyConfig, keda_numbers
from adq.core.errors import InputError


def parse(text: str) -> dict[str, float]:
    """``name=share,name=share``, shares summing to 1."""
    shares = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--groups: {part!r} is not name=share (flux=0.3,sdxl=0.7)") from None
    if not shares or any(not n or not 0 < s <= 1 for n, s in shares.items()) or abs(sum(shares.values()) - 1) > 1e-6:
        raise InputError(f"--groups {text!r}: name each group once, with shares in (0, 1] that sum to 1")
    return shares


def simulate_groups(
    cfg: PolicyConfig, shares: dict[str, float], seed: int = 0, dt: float = 1.0, policy: str = "schedule+queue"
) -> list[dict]:
    """One row per group's pool, then the one shared pool serving them all, on the base scenario."""
    target = cfg.p95_latency_target_s
    rows = []
    for i, (name, share) in enumerate(shares.items()):
        own = replace(
            cfg, peak_arrival_rate=cfg.peak_arrival_rate * share, offpeak_arrival_rate=cfg.offpeak_arrival_rate * share
        )
        result = simulate(own, policy, seed=seed + 100 * (i + 1), dt=dt)
        rows.append({"pool": name, "share": share, "teacher_max": keda_numbers(own).teacher_max} | result.row(target))
    shared = simulate(cfg, policy, seed=seed, dt=dt)
    rows.append({"pool": "shared", "share": 1.0, "teacher_max": keda_numbers(cfg).teacher_max} | shared.row(target))
    return rows


def table(rows: list[dict], target: float) -> str:
    lines = [f"| pool | share | max replicas | GPU-hours | p95 (s) | over {target:g} s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['pool']} | {r['share']:.2f} | {r['teacher_max']} | {r['gpu_hours']:.1f} | {r['p95']:.1f} "
            f"| {r['slo_violations']:.1%} |"
        )
    groups = [r for r in rows if r["pool"] != "shared"]
    total = sum(r["gpu_hours"] for r in groups)
    lines.append(f"\nGroups together: {total:.1f} GPU-hours against {rows[-1]['gpu_hours']:.1f} for one shared pool.")
    return "\n".join(lines)

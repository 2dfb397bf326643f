"""Operator commands: tenants' keys and webhook secrets, the autoscaling numbers and the day simulator."""

from __future__ import annotations

from pathlib import Path

from adq.core.errors import InputError


def webhook_secret(a) -> int:
    from adq.core.config import get_settings
    from adq.jobs.webhooks import secret_for

    if not get_settings().webhook_secret:
        raise InputError("ADQ_WEBHOOK_SECRET is not set: webhooks are off, and there is nothing to derive from")
    print(secret_for(a.name))
    return 0


def api_key(a) -> int:
    from adq.gateway.auth import new_key

    key, entry = new_key(a.name)
    print(f"key (give it to the client; it is not stored anywhere): {key}")
    print(f"ADQ_API_KEYS entry (what the gateway keeps): {entry}")
    if a.webhook_secret:
        from adq.core.config import get_settings
        from adq.jobs.webhooks import secret_for

        if not get_settings().webhook_secret:
            raise InputError("ADQ_WEBHOOK_SECRET is not set: webhooks are off, and there is nothing to derive from")
        print(f"webhook secret (the receiver verifies with it): {secret_for(a.name)}")
    return 0


def autoscale(a) -> int:
    from adq.control.keda import write
    from adq.control.sizing import PolicyConfig, keda_numbers

    cfg = PolicyConfig.load(a.config)
    if a.action == "render":
        print(f"wrote {write(Path(a.out), cfg)}")
    else:
        for name, value in vars(keda_numbers(cfg)).items():
            print(f"{name}: {value}")
    return 0


def simulate(a) -> int:
    from adq.control.report import report
    from adq.control.simulate import CONTROLS, POLICIES, SCENARIOS
    from adq.control.sizing import PolicyConfig

    if a.groups:
        import json

        from adq.control import groups

        cfg = PolicyConfig.load(a.config)
        rows = groups.simulate_groups(cfg, groups.parse(a.groups), seed=a.seed, dt=a.dt)
        print(groups.table(rows, cfg.p95_latency_target_s))
        if a.json:
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")
        return 0
    report(
        PolicyConfig.load(a.config),
        seed=a.seed,
        out_dir=Path(a.out_dir),
        dt=a.dt,
        scenarios=a.scenario or SCENARIOS,
        policies=a.scaling or POLICIES,
        controls=a.control or CONTROLS,
        json_path=Path(a.json) if a.json else None,
        frontier_file=Path(a.frontier) if a.frontier else None,
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser("webhook-secret", help="print the secret a tenant's webhook receiver verifies with")
    p.add_argument("name", help="the API key's name (the job owner)")
    p.set_defaults(fn=webhook_secret)

    p = sub.add_parser("api-key", help="make a new API key and print it with its hashed ADQ_API_KEYS entry")
    p.add_argument("name", help="the key's name: the tenant that owns the jobs it submits")
    p.add_argument("--webhook-secret", action="store_true", help="also print the tenant's webhook secret")
    p.set_defaults(fn=api_key)

    from adq.control.keda import KEDA_FILE

    policy_help = "autoscale policy JSON (default: the shipped data/autoscale.json)"
    p = sub.add_parser("autoscale", help="teacher autoscaling numbers; `render` rewrites infra/k8s/keda.yaml")
    p.add_argument("action", choices=["show", "render"])
    p.add_argument("--config", help=policy_help)
    p.add_argument("--out", default=str(KEDA_FILE), help="where `render` writes (default: %(default)s)")
    p.set_defaults(fn=autoscale)

    p = sub.add_parser("simulate", help="simulate a day: teacher scaling x control policies, base and drift")
    p.add_argument("--config", help=policy_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dt", type=float, default=1.0, help="time step in seconds")
    p.add_argument("--out-dir", default=".adq/simulate")
    p.add_argument(
        "--json", help="also write one row per (scenario, scaling, control) here; the table and plot take its name"
    )
    from adq.control.simulate import CONTROLS, POLICIES, SCENARIOS

    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="only these scenarios (repeatable)")
    p.add_argument("--scaling", action="append", choices=POLICIES, help="only these scaling policies")
    p.add_argument(
        "--control", action="append", choices=(*CONTROLS, "slo+frontier"), help="only these control policies"
    )
    p.add_argument("--frontier", help="a tune's frontier.json: price quality by it, and add the slo+frontier control")
    p.add_argument(
        "--groups",
        metavar="NAME=SHARE,...",
        help="instead: a teacher pool per preset group, each with its share of the jobs and scaled on its own queue, "
        "beside one shared pool (flux=0.3,sdxl=0.7)",
    )
    p.set_defaults(fn=simulate)

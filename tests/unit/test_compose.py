"""docker-compose files, checked against the code (Docker does not run here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from adq.cli import build_parser
from adq.core.config import Settings
from adq.core.constants import QUEUES
from adq.workers.launch import POOLS

ROOT = Path(__file__).resolve().parents[2]


class ComposeLoader(yaml.SafeLoader):
    """Understands compose's !reset and !override tags."""


ComposeLoader.add_constructor("!reset", lambda loader, node: {"__reset__": True})
ComposeLoader.add_constructor("!override", lambda loader, node: loader.construct_mapping(node))


def load(name: str) -> dict:
    return yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)


def adq_commands() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def env_keys(service: dict) -> set[str]:
    env = service.get("environment") or {}
    return set(env) if isinstance(env, dict) else {e.split("=", 1)[0] for e in env}


BASE, CPU = load("docker-compose.yml"), load("docker-compose.cpu.yml")
RABBIT = load("docker-compose.rabbitmq.yml")


def test_every_command_names_a_real_entrypoint():
    commands = adq_commands()
    for name, svc in BASE["services"].items():
        cmd = svc.get("command")
        if svc.get("image", "").startswith("${ADQ_IMAGE"):
            assert cmd[0] == "adq" and cmd[1] in commands, (name, cmd)
            if cmd[1] == "worker":
                assert cmd[2] in POOLS, (name, cmd)
            build_parser().parse_args(cmd[1:])  # every flag exists


def test_every_adq_variable_is_a_settings_field():
    fields = {f"ADQ_{name.upper()}" for name in Settings.model_fields}
    for doc in (BASE, CPU, RABBIT):
        for name, svc in doc["services"].items():
            unknown = {k for k in env_keys(svc) if k.startswith("ADQ_")} - fields
            assert not unknown, (name, unknown)
    text = (ROOT / "docker-compose.yml").read_text()
    for var in set(re.findall(r"\bADQ_[A-Z0-9_]+", text)) - {"ADQ_IMAGE", "ADQ_MODELS_DIR"}:
        assert var in fields, var


def test_queues_match_the_code():
    pools = {
        svc["command"][2]
        for svc in BASE["services"].values()
        if isinstance(svc.get("command"), list) and svc["command"][:2] == ["adq", "worker"]
    }
    assert pools == set(POOLS)
    assert {POOLS[p] for p in pools} == set(QUEUES)


def test_secrets_are_required_and_workers_wait_for_healthy_dependencies():
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in (
        "REDIS_PASSWORD",
        "POSTGRES_PASSWORD",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "FLOWER_PASSWORD",
        "ADQ_API_KEYS",
        "ADQ_WEBHOOK_SECRET",
        "ADQ_OPS_TOKEN",
    ):
        uses = re.findall(r"\$\{" + secret + r"(:\?|:-|\})", text)
        assert uses and all(u == ":?" for u in uses), (secret, uses)
    services = BASE["services"]
    for name in ("api", "student", "teacher", "webhooks", "sweeper"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["create-bucket"]["condition"] == "service_completed_successfully"
    for name in ("redis", "postgres", "s3"):
        assert "healthcheck" in services[name]
    assert services["migrate"]["command"] == ["adq", "migrate"]


def test_gpu_reservations_and_grace_periods():
    s = Settings()
    teacher = BASE["services"]["teacher"]
    devices = teacher["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    grace = int(teacher["stop_grace_period"].rstrip("s"))
    assert grace > int(BASE["x-adq-env"]["ADQ_TEACHER_TIME_LIMIT_S"]) >= 1
    assert int(BASE["x-adq-env"]["ADQ_VISIBILITY_TIMEOUT_S"]) > int(BASE["x-adq-env"]["ADQ_TEACHER_TIME_LIMIT_S"])
    assert int(BASE["services"]["student"]["stop_grace_period"].rstrip("s")) > s.student_time_limit_s


def test_cpu_override_runs_tiny_without_gpus():
    for name in ("student", "teacher"):
        svc = CPU["services"][name]
        assert svc["deploy"] == {"__reset__": True}
        assert svc["environment"]["ADQ_PRESET"] == "tiny" and svc["environment"]["ADQ_DEVICE"] == "cpu"
    assert set(CPU["services"]) <= set(BASE["services"])


def test_retention_runs_on_a_schedule_and_the_s3_rule_backs_it_up():
    import json

    assert BASE["services"]["prune"]["command"][:2] == ["adq", "prune"]
    cron = [d for d in yaml.safe_load_all((ROOT / "infra/k8s/jobs.yaml").read_text()) if d["kind"] == "CronJob"]
    assert [c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] for c in cron] == [
        ["adq", "prune"]
    ]
    rule, inputs = json.loads((ROOT / "infra/s3-lifecycle.json").read_text())["Rules"]
    s = Settings(storage_url=BASE["x-adq-env"]["ADQ_STORAGE_URL"])
    prefix = s.storage_url.split("/", 3)[3]
    assert rule["Filter"]["Prefix"] == f"{prefix}/jobs/"  # the keys adq.jobs.storage writes
    assert rule["Expiration"]["Days"] * 86400 > s.result_ttl_s  # the backstop never expires before the prune
    # Input images: an upload may be used by a job up to ADQ_UPLOAD_TTL_S after it was sent, and that job keeps it
    # for ADQ_RESULT_TTL_S after it ends, so the backstop waits out both.
    assert inputs["Filter"]["Prefix"] == f"{prefix}/inputs/"
    assert inputs["Expiration"]["Days"] * 86400 > s.result_ttl_s + s.upload_ttl_s


SECRETS = {
    "ADQ_BROKER_URL": "broker",
    "ADQ_DATABASE_URL": "db",
    "AWS_SECRET_ACCESS_KEY": "s3",
    "ADQ_WEBHOOK_SECRET": "webhook",
    "ADQ_API_KEYS": "keys",
    "ADQ_OPS_TOKEN": "ops",
    "ADQ_FLOWER_PASSWORD": "flower",
}


def test_each_service_holds_only_the_secrets_its_role_needs():
    needs = {
        "api": {"broker", "db", "s3", "webhook", "keys", "ops"},
        "student": {"broker", "db", "s3"},
        "teacher": {"broker", "db", "s3"},
        "webhooks": {"broker", "db", "webhook"},
        "sweeper": {"broker", "db"},
        "controller": {"broker", "db"},
        "prune": {"db", "s3"},
        "migrate": {"db"},
        "create-bucket": {"s3"},
        "flower": {"broker", "flower"},
    }
    for name, want in needs.items():
        held = {SECRETS[k] for k in env_keys(BASE["services"][name]) if k in SECRETS}
        assert held == want, (name, held)
    assert not set(BASE["x-adq-env"]) & set(SECRETS)  # the shared block holds no secret


def test_each_group_teacher_consumes_only_its_groups_queue():
    from adq.cli import build_parser
    from adq.jobs import routes
    from tests.helpers import configured

    example = "flux-schnell-dev=flux,sdxl-turbo=sdxl,lcm-sdxl=sdxl,lcm-lora-sdxl=sdxl"  # the comment's example
    assert example in (ROOT / "docker-compose.yml").read_text()
    groups = {n: s for n, s in BASE["services"].items() if "groups" in s.get("profiles", [])}
    assert set(groups) == {"teacher-flux", "teacher-sdxl"}
    with configured(ADQ_PRESET_GROUPS=example):
        for name, svc in groups.items():
            args = build_parser().parse_args(svc["command"][1:])
            assert routes.worker_queues("teacher", args.presets.split(",")) == [name.replace("-", ".", 1)]


def test_a_grouped_preset_is_refused_only_when_no_live_worker_consumes_its_queues():
    import pytest

    from adq.core.errors import PresetNotServed
    from adq.jobs import routes
    from tests.helpers import configured

    with configured(ADQ_PRESET_GROUPS="tiny=small"):
        with pytest.raises(PresetNotServed, match=r"teacher.small queue.*adq worker teacher --presets tiny"):
            routes.check_served(["tiny"], lambda q: 1 if q == "student.small" else 0)
        routes.check_served(["tiny"], lambda q: None)  # the broker cannot tell: let it through
        routes.check_served(["tiny"], lambda q: 2)
        asked = []
        routes.check_served(["null"], lambda q: asked.append(q) or 0)  # no group: the shared queues, never refused
        assert asked == []


def test_the_rabbitmq_override_moves_every_worker_and_keeps_redis_for_the_control_plane():
    services = RABBIT["services"]
    adq_services = {n for n, svc in BASE["services"].items() if "ADQ_BROKER_URL" in env_keys(svc)}
    assert adq_services <= set(services) and set(services) <= set(BASE["services"]) | {"rabbitmq"}
    for name in adq_services:
        env = services[name]["environment"]
        assert env["ADQ_BROKER_URL"].startswith("amqp://") and env["ADQ_CONTROL_REDIS_URL"].startswith("redis://")
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert "healthcheck" in services["rabbitmq"]


def test_rabbitmqs_consumer_timeout_outlasts_the_longest_stage():
    """A message held past consumer_timeout is redelivered while its stage still runs (docs/brokers.md)."""
    conf = dict(
        line.split(" = ", 1)
        for line in (ROOT / "infra/rabbitmq/rabbitmq.conf").read_text().splitlines()
        if " = " in line and not line.startswith("#")
    )
    limits = [int(BASE["x-adq-env"][k]) for k in ("ADQ_STUDENT_TIME_LIMIT_S", "ADQ_TEACHER_TIME_LIMIT_S")]
    s = Settings()
    longest = max(*limits, s.student_time_limit_s, s.teacher_time_limit_s) + s.retry_backoff_max_s
    assert int(conf["consumer_timeout"]) >= 1000 * longest * 2  # twice the longest stage, and a countdown

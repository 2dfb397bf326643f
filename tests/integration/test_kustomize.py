"""The Kubernetes manifests as kubectl kustomize renders them, the base (infra/k8s), its overlay with a teacher
Deployment per preset group (infra/k8s-groups) and the one whose KEDA asks RabbitMQ (infra/k8s-rabbitmq): every
role, the queues the code routes to, grace periods, settings names and the KEDA numbers (kubectl runs as a
subprocess)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from adq.cli import build_parser
from adq.control import sizing as policy
from adq.control.sizing import PolicyConfig, keda_numbers
from adq.core.config import Settings
from adq.core.constants import QUEUES, STUDENT_QUEUE, TEACHER_QUEUE
from adq.jobs import routes
from adq.workers.launch import POOLS
from tests.helpers import configured

ROOT = Path(__file__).resolve().parents[2]
CFG = PolicyConfig.load()


def queue_of(trigger: dict) -> str | None:
    """The queue a trigger scales on: the gateway's sum over the queue's priority steps (GET /v1/queues); a group's
    queue name has its dot escaped in the JSON path (teacher\\.flux)."""
    meta = trigger["metadata"]
    if trigger["type"] == "metrics-api" and meta["url"].endswith("/v1/queues"):
        return meta["valueLocation"].removeprefix("depths.").replace("\\.", ".")
    if trigger["type"] == "rabbitmq":  # KEDA asks RabbitMQ (infra/k8s-rabbitmq)
        assert trigger["metadata"]["mode"] == "QueueLength"
        return meta["queueName"]
    return None


def target_of(trigger: dict) -> int:
    return int(trigger["metadata"].get("targetValue") or trigger["metadata"]["value"])


@pytest.fixture(scope="module", params=["k8s", "k8s-groups", "k8s-rabbitmq"])
def rendered(request) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "infra" / request.param)], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _served_queues(rendered, command: list[str]) -> list[str]:
    """The queues `adq worker POOL [--presets ...]` consumes under the rendered config map's settings."""
    config = by_kind(rendered, "ConfigMap")["adq-config"]["data"]
    args = build_parser().parse_args(command[1:])
    presets = args.presets.split(",") if args.presets else None
    with configured(ADQ_PRESET_GROUPS=config.get("ADQ_PRESET_GROUPS", "")):
        return routes.worker_queues(POOLS[args.pool], presets)


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_kustomize_renders_every_role(rendered):
    deployments = by_kind(rendered, "Deployment")
    groups = {name for name in deployments if name.startswith("adq-teacher-")}
    assert all(deployments[n]["metadata"]["labels"]["adq.dev/group"] for n in groups)
    assert set(deployments) - groups == {
        "adq-api",
        "adq-student",
        "adq-teacher",
        "adq-webhooks",
        "adq-sweeper",
        "adq-flower",
        "adq-controller",
    }
    assert set(by_kind(rendered, "Job")) == {"adq-migrate", "adq-init-storage"}
    assert all(d["metadata"]["namespace"] == "adq" for d in rendered if d["kind"] != "Namespace")


def test_workers_consume_the_queues_the_code_routes_to(rendered):
    for _name, dep in by_kind(rendered, "Deployment").items():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            assert c["command"][0] == "adq"
            build_parser().parse_args(c["command"][1:])  # a real entrypoint with real flags
    objs = by_kind(rendered, "ScaledObject")
    scaled = set()
    for so in objs.values():
        target = by_kind(rendered, "Deployment")[so["spec"]["scaleTargetRef"]["name"]]
        command = target["spec"]["template"]["spec"]["containers"][0]["command"]
        queues = [q for q in map(queue_of, so["spec"]["triggers"]) if q]
        served = _served_queues(rendered, command)
        # a worker of every queue scales on its shared queue; a group's worker on its group's queue, its only one
        assert len(queues) == 1 and queues[0] == served[0] and (queues[0] in QUEUES or served == queues)
        scaled |= set(queues)
    assert {STUDENT_QUEUE, TEACHER_QUEUE} <= scaled


def test_grace_periods_exceed_hard_limits_and_teacher_has_a_gpu(rendered):
    config = by_kind(rendered, "ConfigMap")["adq-config"]["data"]
    s = Settings(**{k[4:].lower(): v for k, v in config.items()})  # the config map is valid settings
    deps = by_kind(rendered, "Deployment")
    teacher = deps["adq-teacher"]["spec"]["template"]["spec"]
    assert teacher["terminationGracePeriodSeconds"] > s.teacher_time_limit_s
    assert deps["adq-student"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > s.student_time_limit_s
    assert teacher["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert s.visibility_timeout_s > s.teacher_time_limit_s


def test_env_names_are_settings_fields(rendered):
    fields = {f"ADQ_{n.upper()}" for n in Settings.model_fields}
    assert set(by_kind(rendered, "ConfigMap")["adq-config"]["data"]) <= fields
    example = [
        line
        for f in [
            *(ROOT / "infra" / "k8s" / "secrets").glob("*.example.env"),
            ROOT / "infra/k8s-rabbitmq/secrets.example.env",
        ]
        for line in f.read_text().splitlines()
    ]
    names = {line.split("=", 1)[0] for line in example if "=" in line and not line.startswith("#")}
    assert {n for n in names if n.startswith("ADQ_")} <= fields
    for dep in by_kind(rendered, "Deployment").values():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            assert {e["name"] for e in c.get("env", []) if e["name"].startswith("ADQ_")} <= fields


def test_keda_numbers_and_peak_schedule(rendered):
    n = keda_numbers(CFG)
    teacher = by_kind(rendered, "ScaledObject")["adq-teacher"]["spec"]
    assert (teacher["minReplicaCount"], teacher["maxReplicaCount"]) == (0, n.teacher_max)
    queue_t, cron, control = teacher["triggers"]
    assert queue_of(queue_t) == TEACHER_QUEUE and target_of(queue_t) == n.teacher_list_length
    # The controller's number (issue 8): read from the gateway's /v1/control, one replica per unit.
    assert control["type"] == "metrics-api" and control["metadata"]["valueLocation"] == "desired_teacher_replicas"
    assert control["metadata"]["url"].endswith("/v1/control") and control["metadata"]["targetValue"] == "1"
    assert cron["metadata"] == {
        "timezone": CFG.timezone,
        "start": f"0 {CFG.peak_start_hour} * * 1-5",
        "end": f"0 {CFG.peak_end_hour} * * 1-5",
        "desiredReplicas": str(n.teacher_peak_floor),
    }
    assert n.teacher_peak_floor == policy.teacher_replicas(CFG, CFG.peak_arrival_rate) <= n.teacher_max

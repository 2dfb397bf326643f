"""The rendered Kubernetes manifests (kubectl kustomize) meet Pod Security "restricted", give every workload
limits and its own role's Secret, and put every workload under a NetworkPolicy besides the default deny."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_kustomize import by_kind, rendered  # noqa: F401  (the kustomize fixture)

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ("Deployment", "Job", "CronJob")
ROLE_SECRETS = {"api", "worker", "webhooks", "flower", "ops"}


def _pods(docs):
    for d in docs:
        if d["kind"] in WORKLOADS:
            spec = d["spec"]["jobTemplate"]["spec"] if d["kind"] == "CronJob" else d["spec"]
            yield d["metadata"]["name"], spec["template"]


def test_every_pod_meets_the_restricted_pod_security_level(rendered):  # noqa: F811
    pods = dict(_pods(rendered))
    assert len(pods) >= 10
    for name, template in pods.items():
        spec = template["spec"]
        ctx = spec.get("securityContext", {})
        assert ctx.get("runAsNonRoot") is True and ctx.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities") == {"drop": ["ALL"]}, name
            assert not sc.get("privileged") and not spec.get("hostNetwork") and not spec.get("hostPID"), name
            limits = c.get("resources", {}).get("limits", {})
            assert {"cpu", "memory"} <= set(limits), f"{name}: limits {limits}"


def test_every_pod_reads_its_own_roles_secret_and_no_other(rendered):  # noqa: F811
    used = set()
    for name, template in _pods(rendered):
        refs = [
            e["secretRef"]["name"]
            for c in template["spec"]["containers"]
            for e in c.get("envFrom", [])
            if "secretRef" in e
        ]
        assert len(refs) == 1 and refs[0].startswith("adq-secrets-"), (name, refs)
        used.add(refs[0].removeprefix("adq-secrets-"))
    assert used == ROLE_SECRETS
    examples = {p.name.split(".")[0]: p.read_text() for p in (ROOT / "infra/k8s/secrets").glob("*.example.env")}
    assert set(examples) == ROLE_SECRETS | {"keda"}  # KEDA's TriggerAuthentication reads the ops token
    auths = by_kind(rendered, "TriggerAuthentication")
    auth = auths.pop("adq-ops-token")
    for other in auths.values():  # RabbitMQ's (infra/k8s-rabbitmq): from the same KEDA secret, nothing else
        assert [ref["name"] for ref in other["spec"]["secretTargetRef"]] == ["adq-secrets-keda"]
    assert (
        auth["spec"]["secretTargetRef"] == [{"parameter": "token", "name": "adq-secrets-keda", "key": "ADQ_OPS_TOKEN"}]
        and "ADQ_OPS_TOKEN" in examples["keda"] + examples["api"]
    )
    for scaled in by_kind(rendered, "ScaledObject").values():  # every call to the gateway carries the token
        for t in scaled["spec"]["triggers"]:
            if t["type"] == "metrics-api":
                assert (
                    t["metadata"]["authMode"] == "bearer" and t["authenticationRef"]["name"] == auth["metadata"]["name"]
                )
    assert "ADQ_API_KEYS" in examples["api"] and all("ADQ_API_KEYS" not in t for r, t in examples.items() if r != "api")
    assert all("ADQ_FLOWER_PASSWORD" not in t for r, t in examples.items() if r != "flower")
    assert "ADQ_WEBHOOK_SECRET" not in examples["worker"] + examples["ops"] + examples["flower"]


def test_every_workload_has_a_network_policy_of_its_own(rendered):  # noqa: F811
    policies = by_kind(rendered, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    def selects(policy, labels):
        sel = policy["spec"]["podSelector"]
        if not sel:
            return False  # the namespace-wide ones (deny, DNS) are not a role's own
        ok = all(labels.get(k) == v for k, v in sel.get("matchLabels", {}).items())
        for e in sel.get("matchExpressions", []):
            ok = ok and e["operator"] == "In" and labels.get(e["key"]) in e["values"]
        return ok

    for name, template in _pods(rendered):
        labels = template["metadata"]["labels"]
        assert any(selects(p, labels) for p in policies.values()), name
    webhooks = policies["adq-webhooks"]["spec"]["egress"][1]["to"][0]["ipBlock"]
    assert "100.64.0.0/10" in webhooks["except"] and "169.254.0.0/16" in webhooks["except"]
    assert not any(selects(policies[n], {"app": "adq-student"}) for n in ("adq-webhooks", "adq-api"))


def test_every_worker_is_restarted_when_alive_but_no_longer_consuming(rendered):  # noqa: F811
    """The probe is `adq alive POOL` (tasks/liveness.py); Kubernetes restarts the container when it fails."""
    from adq.cli import build_parser
    from adq.workers.launch import POOLS

    deployments = by_kind(rendered, "Deployment")
    for pool in POOLS:
        spec = deployments[f"adq-{pool}"]["spec"]["template"]["spec"]
        assert spec.get("restartPolicy", "Always") == "Always"
        (worker,) = spec["containers"]
        assert worker["command"] == ["adq", "worker", pool]
        probe = worker["livenessProbe"]["exec"]["command"]
        assert probe[:3] == ["adq", "alive", pool]
        build_parser().parse_args(probe[1:])  # a command the CLI knows
        assert worker["livenessProbe"]["periodSeconds"] * worker["livenessProbe"]["failureThreshold"] >= 120

"""Infra checked against the real schemas, not only parsed: the rendered Kubernetes manifests against Kubernetes'
own (kubernetes-validate bundles them), docker-compose against the Compose specification (the schema that
check-jsonschema vendors), the ScaledObjects against KEDA's CRD schema (tests/fixtures, written by
tests/keda_schema.py). A deliberately broken manifest fails each check."""

import copy
import json
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from tests.integration.test_kustomize import rendered  # noqa: F401  (the kustomize fixture)
from tests.unit.test_compose import BASE, CPU, RABBIT, load

K8S_VERSION = "1.34.0"
KEDA = "keda.sh/v1alpha1"


def _validate_k8s(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_rendered_manifests_validate_against_the_kubernetes_schemas(rendered):  # noqa: F811
    core = [d for d in rendered if d["apiVersion"] != KEDA]
    assert {d["kind"] for d in core} >= {"Deployment", "Service", "ConfigMap", "Job", "CronJob", "Namespace"}
    for doc in core:
        _validate_k8s(doc)
    broken = copy.deepcopy(next(d for d in core if d["kind"] == "Deployment"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_k8s(broken)
    typo = copy.deepcopy(next(d for d in core if d["kind"] == "CronJob"))
    typo["spec"]["schedulee"] = typo["spec"].pop("schedule")
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_k8s(typo)


def test_scaled_objects_validate_against_the_keda_crd_schema(rendered):  # noqa: F811
    schema = json.loads((Path(__file__).parents[1] / "fixtures" / "keda-scaledobject.schema.json").read_text())
    check = jsonschema.Draft202012Validator(schema)
    keda = [d for d in rendered if d["apiVersion"] == KEDA]
    assert {d["kind"] for d in keda} == {"ScaledObject", "TriggerAuthentication"}
    scaled = [d for d in keda if d["kind"] == "ScaledObject"]
    assert {d["metadata"]["name"] for d in scaled} >= {"adq-teacher", "adq-student"}
    for doc in scaled:
        check.validate(doc)
    teacher = next(d for d in scaled if d["metadata"]["name"] == "adq-teacher")
    for name, breaks in {
        "a count as text": lambda d: d["spec"].__setitem__("maxReplicaCount", "8"),
        "a trigger value that is not a string": lambda d: d["spec"]["triggers"][0]["metadata"].__setitem__("x", 5),
        "a misspelt field": lambda d: d["spec"].__setitem__("cooldownPeriods", 300),
        "no target": lambda d: d["spec"].pop("scaleTargetRef"),
    }.items():
        broken = copy.deepcopy(teacher)
        breaks(broken)
        assert not check.is_valid(broken), name


def _compose_schema() -> dict:
    vendor = resources.files("check_jsonschema.builtin_schemas") / "vendor" / "compose-spec.json"
    return json.loads(vendor.read_text())


def test_compose_files_validate_against_the_compose_specification():
    schema = _compose_schema()
    for doc in (BASE, CPU, RABBIT):  # docker-compose.yml, and each override on its own
        jsonschema.validate(_plain(doc), schema)
    broken = copy.deepcopy(_plain(load("docker-compose.yml")))
    broken["services"]["api"]["restart"] = ["always"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _plain(doc):
    """Compose's !reset tag reads as a marker here; the specification sees the plain mapping it stands for."""
    if isinstance(doc, dict):
        return {k: _plain(v) for k, v in doc.items() if not (isinstance(v, dict) and v.get("__reset__"))}
    if isinstance(doc, list):
        return [_plain(v) for v in doc]
    return doc

"""Writes tests/fixtures/keda-scaledobject.schema.json: KEDA's ScaledObject (keda.sh/v1alpha1) as a JSON Schema.

No package ships KEDA's CRD YAML, so the schema comes from `cloudcoil-models-keda`, whose pydantic models are
generated from KEDA's CRDs (its version is KEDA's), and is made strict the way the API server with field
validation `Strict` treats a structural schema: unknown fields are errors and fields are not nullable.

    pip install cloudcoil==0.6.0 cloudcoil-models-keda==2.16.1.0
    python -m tests.keda_schema

Only regenerating needs those packages; the test reads the committed file."""

import json
from importlib import metadata
from pathlib import Path

OUT = Path(__file__).parent / "fixtures" / "keda-scaledobject.schema.json"


def _strict(node):
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) for k, v in node.items() if k not in ("title", "default")}
    options = node.get("anyOf")
    if options and {"type": "null"} in options:  # Optional[X] in pydantic; absent, not null, in a CRD
        rest = [o for o in options if o != {"type": "null"}]
        node.pop("anyOf")
        node.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
    if "properties" in node:
        node.setdefault("additionalProperties", False)
    return node


def _referenced(schema: dict) -> dict:
    """The $defs still reachable from the properties (dropping status leaves its conditions unused)."""
    defs, seen, todo = schema["$defs"], set(), [schema["properties"]]
    while todo:
        text = json.dumps(todo.pop())
        for name in defs:
            if f'"#/$defs/{name}"' in text and name not in seen:
                seen.add(name)
                todo.append(defs[name])
    return {name: defs[name] for name in sorted(seen)}


def build() -> dict:
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    schema = _strict(ScaledObject.model_json_schema(by_alias=True))
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    schema["properties"].pop("status", None)  # written by the operator, never by a manifest
    schema["$defs"] = _referenced(schema)
    version = metadata.version("cloudcoil-models-keda")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"KEDA {version.rsplit('.', 1)[0]} ScaledObject, from cloudcoil-models-keda {version}; "
        "regenerate with `python -m tests.keda_schema`",
        **schema,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")

"""JSON Schemas for the custom resources in k8s/.

kubernetes-validate ships schemas for built-in kinds only. The custom kinds are checked
against upstream's own CRD schemas, vendored in ``crds/`` by ``vendor_crds.py`` from the
release tags (``spec.versions[*].schema.openAPIV3Schema``, descriptions removed; each file
names its release and the commit it came from):
  - Gateway API Inference Extension v1.6.0: InferencePool (inference.networking.k8s.io/v1)
  - llm-d router v0.10.0: InferenceObjective, InferenceModelRewrite (llm-d.ai/v1alpha2),
    which moved there from the extension's inference.networking.x-k8s.io group
  - Gateway API v1.6.1 (standard channel): HTTPRoute (gateway.networking.k8s.io/v1)
  - Kubeflow Trainer v2.3.0: TrainJob, TrainingRuntime (trainer.kubeflow.org/v1alpha1)
Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1) is written by hand below
(the fields k8s/ uses, with upstream's enums and bounds).

The API server rejects fields a structural schema does not declare (kubectl's default
strict field validation), so every object schema that lists ``properties`` is closed here
(``additionalProperties: false``) unless it preserves unknown fields: misspelt or outdated
fields fail, e.g. the pre-v1 InferencePool's ``targetPortNumber`` / ``extensionRef``.
Object names are checked as DNS subdomains. CEL rules (``x-kubernetes-validations``) and
defaults are not evaluated offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {
            "type": "string",
            "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        },
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_PROM_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
    r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}


def _resource(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


SERVICE_MONITOR_V1 = _resource(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["selector"],
        "properties": {
            "selector": {"type": "object"},
            "namespaceSelector": {"type": "object"},
            "jobLabel": {"type": "string"},
            "targetLabels": {"type": "array", "items": {"type": "string"}},
            "podTargetLabels": {"type": "array", "items": {"type": "string"}},
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"},
                        "targetPort": {"type": ["string", "integer"]},
                        "path": {"type": "string", "pattern": "^/"},
                        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                        "interval": _PROM_DURATION,
                        "scrapeTimeout": _PROM_DURATION,
                        "honorLabels": {"type": "boolean"},
                        "relabelings": {"type": "array"},
                        "metricRelabelings": {"type": "array"},
                    },
                },
            },
        },
    }
)



def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every object that declares ``properties`` closed to other fields, as
    the API server's strict field validation treats a structural schema."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {name: closed(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = closed(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [closed(sub) for sub in out[key]]
    return out


CRDS = Path(__file__).resolve().parent / "crds"


def upstream_schemas(directory: Path = CRDS) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> schema, from every vendored release in ``directory``."""
    schemas = {}
    for path in sorted(directory.glob("*.json")):
        for key, schema in json.loads(path.read_text(encoding="utf-8"))["schemas"].items():
            api_version, kind = key.split(" ")
            schema = closed(schema)
            schema["properties"]["metadata"] = _METADATA
            schemas[(api_version, kind)] = schema
    return schemas


# (apiVersion, kind) -> schema
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    **upstream_schemas(),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_V1,
}

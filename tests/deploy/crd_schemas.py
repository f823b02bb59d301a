"""JSON Schemas for the custom resources in k8s/, written by hand.

kubernetes-validate ships schemas for built-in kinds only. These cover the
fields k8s/ uses of each CRD, checked against the upstream CRDs of
  - Gateway API Inference Extension v1.5.0: InferencePool
    (inference.networking.k8s.io/v1), InferenceObjective and
    InferenceModelRewrite (inference.networking.x-k8s.io/v1alpha2)
  - Gateway API v1: HTTPRoute (gateway.networking.k8s.io/v1)
  - Prometheus Operator: ServiceMonitor (monitoring.coreos.com/v1)
with upstream's required fields, enums and bounds. Kubeflow Trainer's TrainJob and
TrainingRuntime use upstream's own schemas instead (``crds/``: v2.3.0's
openAPIV3Schema with the descriptions removed), too large to restate by hand; their CEL
rules (``x-kubernetes-validations``) are not evaluated offline. `additionalProperties: false`
on the spec objects catches misspelt or outdated fields (e.g. the pre-v1
InferencePool's `targetPortNumber` / `extensionRef`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_NAME = {"type": "string", "minLength": 1, "maxLength": 253}
_GROUP = {
    "type": "string",
    "maxLength": 253,
    "pattern": r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
_KIND = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
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
_POOL_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"group": _GROUP, "kind": _KIND, "name": _NAME},
}
# {"number": <port>}, as targetPorts items and endpointPickerRef.port spell it.
_PORT_NUMBER = {"type": "object", "additionalProperties": False, "required": ["number"],
                "properties": {"number": _PORT}}


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


INFERENCE_POOL_V1 = _resource(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["selector", "targetPorts", "endpointPickerRef"],
        "properties": {
            "selector": {
                "type": "object",
                "additionalProperties": False,
                "required": ["matchLabels"],
                "properties": {
                    "matchLabels": {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 64,
                        "additionalProperties": {"type": "string", "maxLength": 63},
                    }
                },
            },
            "targetPorts": {
                "type": "array",
                "minItems": 1,
                "maxItems": 8,
                "items": _PORT_NUMBER,
            },
            "appProtocol": {"enum": ["http", "kubernetes.io/h2c"]},
            "endpointPickerRef": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "port"],  # port is required when kind is Service (the default)
                "properties": {
                    "group": _GROUP,
                    "kind": _KIND,
                    "name": _NAME,
                    "port": _PORT_NUMBER,
                    "failureMode": {"enum": ["FailOpen", "FailClose"]},
                },
            },
        },
    }
)

INFERENCE_OBJECTIVE_V1ALPHA2 = _resource(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["poolRef"],
        "properties": {"priority": {"type": "integer"}, "poolRef": _POOL_REF},
    }
)

INFERENCE_MODEL_REWRITE_V1ALPHA2 = _resource(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["poolRef", "rules"],
        "properties": {
            "poolRef": _POOL_REF,
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["targets"],
                    "properties": {
                        "matches": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["model"],
                                "properties": {
                                    "model": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["value"],
                                        "properties": {
                                            "type": {"enum": ["Exact"]},
                                            "value": {"type": "string", "minLength": 1},
                                        },
                                    }
                                },
                            },
                        },
                        "targets": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["modelRewrite"],
                                "properties": {
                                    "modelRewrite": {"type": "string", "minLength": 1},
                                    "weight": {"type": "integer", "minimum": 1, "maximum": 1000000},
                                },
                            },
                        },
                    },
                },
            },
        },
    }
)

def _object_ref(**extra: dict) -> dict:
    """A Gateway API reference: group, kind, name, namespace, port, plus ``extra``."""
    return {"type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {"group": _GROUP, "kind": _KIND, "name": _NAME,
                           "namespace": {"type": "string"}, "port": _PORT, **extra}}


_BACKEND_REF = _object_ref(weight={"type": "integer", "minimum": 0, "maximum": 1000000})
_DURATION = {"type": "string", "pattern": r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"}
_PROM_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
    r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}

HTTP_ROUTE_V1 = _resource(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "parentRefs": {
                "type": "array",
                "maxItems": 32,
                "items": _object_ref(sectionName={"type": "string"}),
            },
            "hostnames": {"type": "array", "items": {"type": "string"}},
            "rules": {
                "type": "array",
                "maxItems": 16,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "matches": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "path": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "type": {
                                                "enum": ["Exact", "PathPrefix", "RegularExpression"]
                                            },
                                            "value": {"type": "string", "pattern": "^/"},
                                        },
                                    },
                                    "headers": {"type": "array"},
                                    "queryParams": {"type": "array"},
                                    "method": {"type": "string"},
                                },
                            },
                        },
                        "backendRefs": {"type": "array", "items": _BACKEND_REF},
                        "filters": {"type": "array"},
                        "timeouts": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"request": _DURATION, "backendRequest": _DURATION},
                        },
                    },
                },
            },
        },
    }
)

SERVICE_MONITOR_V1 = _resource(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["selector"],
        "properties": {
            "selector": {"type": "object"},
            "namespaceSelector": {"type": "object"},
            "jobLabel": {"type": "string"},
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

# (apiVersion, kind) -> schema
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("inference.networking.k8s.io/v1", "InferencePool"): INFERENCE_POOL_V1,
    ("inference.networking.x-k8s.io/v1alpha2", "InferenceObjective"): INFERENCE_OBJECTIVE_V1ALPHA2,
    (
        "inference.networking.x-k8s.io/v1alpha2",
        "InferenceModelRewrite",
    ): INFERENCE_MODEL_REWRITE_V1ALPHA2,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTP_ROUTE_V1,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_V1,
}

UPSTREAM_CRDS = Path(__file__).resolve().parent / "crds" / "kubeflow-trainer-v2.3.0.json"
for _key, _schema in json.loads(UPSTREAM_CRDS.read_text())["schemas"].items():
    _api_version, _kind = _key.split(" ")
    CRD_SCHEMAS[(_api_version, _kind)] = _schema

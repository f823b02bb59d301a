"""Cut the schemas Quanta's tune API shares with OpenAI out of ``openai/openai-openapi``.

The whole description is ~3 MB of YAML; the tests need the response schemas of the
files and fine-tuning routes (and what they reference). Run it against a checkout of
that repository to refresh ``openai-fine-tuning.json``:

    python tests/contract/extract_openai_schemas.py path/to/openapi.yaml COMMIT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOTS = ("OpenAIFile", "ListFilesResponse", "DeleteFileResponse", "FineTuningJob",
         "ListPaginatedFineTuningJobsResponse", "FineTuningJobEvent",
         "ListFineTuningJobEventsResponse", "FineTuningJobCheckpoint",
         "ListFineTuningJobCheckpointsResponse", "ErrorResponse", "Upload", "UploadPart",
         "ListFineTuningCheckpointPermissionResponse",
         "DeleteFineTuningCheckpointPermissionResponse")
DROP = ("description", "example", "examples", "x-oaiMeta", "x-oaiTypeLabel", "deprecated",
        "title", "x-stainless-const", "x-oaiExpandable")
OUT = Path(__file__).with_name("openai-fine-tuning.json")


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _strip(node: Any) -> Any:
    """Documentation dropped; OpenAPI 3.0's boolean ``exclusiveMinimum`` (still used in
    places of this 3.1 document, where JSON Schema reads ``true`` as the number 1) made
    the 3.1 bound it means."""
    if isinstance(node, dict):
        node = dict(node)
        if node.get("exclusiveMinimum") is True:
            node["exclusiveMinimum"] = node.pop("minimum")
        return {k: _strip(v) for k, v in node.items() if k not in DROP}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def main(spec_path: str, commit: str) -> None:
    schemas = yaml.safe_load(Path(spec_path).read_text())["components"]["schemas"]
    keep: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep[name] = _strip(schemas[name])
            todo += sorted(_refs(keep[name]) - set(keep))
    OUT.write_text(json.dumps({"source": f"openai/openai-openapi@{commit} openapi.yaml",
                               "schemas": dict(sorted(keep.items()))}, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])

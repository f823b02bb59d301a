"""Cut the schemas Quanta's APIs share with OpenAI out of ``openai/openai-openapi``.

The whole description is ~3 MB of YAML; the tests need the response schemas of the
files and fine-tuning routes (tune: ``openai-fine-tuning.json``), the evals routes
(``openai-evals.json``), the batch routes (``openai-batch.json``), and the completions,
models and responses routes (serve: ``openai-serve.json``), with what they reference. Run
it against a checkout of that repository to refresh them all:

    python tests/contract/extract_openai_schemas.py path/to/openapi.yaml COMMIT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

TUNE_ROOTS = ("OpenAIFile", "ListFilesResponse", "DeleteFileResponse", "FineTuningJob",
         "ListPaginatedFineTuningJobsResponse", "FineTuningJobEvent",
         "ListFineTuningJobEventsResponse", "FineTuningJobCheckpoint",
         "ListFineTuningJobCheckpointsResponse", "ErrorResponse", "Upload", "UploadPart",
         "ListFineTuningCheckpointPermissionResponse",
         "DeleteFineTuningCheckpointPermissionResponse")
SERVE_ROOTS = ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse",
               "CreateCompletionResponse", "Model", "ListModelsResponse", "ErrorResponse",
               "Response", "ResponseStreamEvent", "ResponseItemList")
EVALS_ROOTS = ("Eval", "EvalList", "EvalRun", "EvalRunList", "EvalRunOutputItem",
               "EvalRunOutputItemList", "ErrorResponse")
BATCH_ROOTS = ("Batch", "ListBatchesResponse", "ErrorResponse")
DROP = ("description", "example", "examples", "x-oaiMeta", "x-oaiTypeLabel", "deprecated",
        "title", "x-stainless-const", "x-oaiExpandable")
OUTPUTS = {"openai-fine-tuning.json": TUNE_ROOTS, "openai-serve.json": SERVE_ROOTS,
           "openai-evals.json": EVALS_ROOTS, "openai-batch.json": BATCH_ROOTS}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _strip(node: Any) -> Any:
    """Documentation dropped; what this 3.1 document still writes in OpenAPI 3.0's terms
    made JSON Schema: a boolean ``exclusiveMinimum`` (which 3.1 reads as the number 1)
    becomes the bound it means, ``nullable: true`` (which 3.1 ignores) an ``anyOf`` with
    null."""
    if isinstance(node, dict):
        node = dict(node)
        if node.get("exclusiveMinimum") is True:
            node["exclusiveMinimum"] = node.pop("minimum")
        nullable = node.pop("nullable", False) is True
        node = {k: _strip(v) for k, v in node.items() if k not in DROP}
        return {"anyOf": [node, {"type": "null"}]} if nullable else node
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def main(spec_path: str, commit: str) -> None:
    schemas = yaml.safe_load(Path(spec_path).read_text())["components"]["schemas"]
    for name, roots in OUTPUTS.items():
        _write(Path(__file__).with_name(name), schemas, roots, commit)


def _write(out: Path, schemas: dict[str, Any], roots: tuple[str, ...], commit: str) -> None:
    keep: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep[name] = _strip(schemas[name])
            todo += sorted(_refs(keep[name]) - set(keep))
    out.write_text(json.dumps({"source": f"openai/openai-openapi@{commit} openapi.yaml",
                               "schemas": dict(sorted(keep.items()))}, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])

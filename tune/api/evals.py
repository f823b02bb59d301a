"""OpenAI's Evals resource: evals (create, list, retrieve, update, delete), their runs
(create, list, retrieve, cancel, delete) and the runs' output items (list, retrieve).

An eval is checked whole when it is created: its ``custom`` item schema (a JSON schema
the API runs over every item of every run: ``tune.evals.item_schemas`` refuses what
could make it fetch, hang or recurse), and each testing criterion as a grader of
``tune.graders`` (``tune.evals.criteria``: the same graders reinforcement fine-tuning
uses, OpenAI's ``label_model`` too), its models limited to those the tenant may use. A
run is checked whole when it is created too: its file (purpose ``evals``) or inline
items, each against the eval's item schema, the messages each item makes, the model it
samples (a base model or a fine-tuned one the tenant may use, checkpoints included).
Only then is it queued; ``quanta tune runner`` (``tune.evals.runner``) grades it
outside this process. Every lookup is scoped to the caller's tenant: another tenant's
eval, run or item answers the same 404 as an id that never existed. Objects are
OpenAI's shapes (``tests/contract/openai-evals.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quanta.registry import (
    EvalOutputItemRecord,
    EvalRecord,
    EvalRunRecord,
    NotFoundError,
    Registry,
)
from quanta.types import EvalRunStatus, FilePurpose
from tune.api import objects
from tune.api.errors import HTTPBadRequest, HTTPNotFound
from tune.api.files import UploadReport, upload_check
from tune.api.graders import check_grader_models
from tune.api.models import usable_model
from tune.evals.criteria import Criterion, parse_criteria
from tune.evals.data_sources import (
    SourceItem,
    check_items,
    check_messages,
    content_items,
    file_items,
    parse_data_source,
    read_lines,
)
from tune.evals.errors import EvalRequestError
from tune.evals.item_schemas import check_item_schema

MAX_NAME = 256
NO_ERROR = {"code": "", "message": ""}  # OpenAI's EvalAPIError of a run that has none
ITEM_STATUSES = ("pass", "fail")
# OpenAI's sample namespace, as an eval's data_source_config schema shows it.
SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "index": {"type": "integer"},
                "message": {"type": "object", "properties": {
                    "role": {"type": "string", "enum": ["assistant"]},
                    "content": {"type": ["string", "null"]},
                    "refusal": {"type": ["string", "null"]}}, "required": ["role"]},
                "finish_reason": {"type": "string"}},
            "required": ["index", "message", "finish_reason"]}},
        "output_text": {"type": "string"},
        "output_json": {"type": "object"},
    },
    "required": ["model", "choices"],
}


@upload_check(FilePurpose.EVALS, "evals")
def _eval_items(path: Path, filename: str) -> UploadReport:
    """An evals file: one JSON object a line, the item or ``{"item": ..., "sample": ...}``."""
    report = read_lines(path, filename)
    return UploadReport("jsonl", len(report.items), report.errors)


# -- OpenAI's objects ----------------------------------------------------------------------

def eval_object(row: EvalRecord) -> dict[str, Any]:
    return {"object": "eval", "id": row.id, "name": row.name,
            "data_source_config": row.data_source_config,
            "testing_criteria": row.testing_criteria, "created_at": objects.unix(row.created_at),
            "metadata": row.meta}


def run_object(row: EvalRunRecord, console_url: str) -> dict[str, Any]:
    return {"object": "eval.run", "id": row.id, "eval_id": row.eval_id, "status": row.status,
            "model": row.model or "", "name": row.name,
            "created_at": objects.unix(row.created_at),
            "report_url": f"{console_url.rstrip('/')}/#/evals/{row.eval_id}/runs/{row.id}",
            "result_counts": row.result_counts,
            "per_model_usage": row.per_model_usage,
            "per_testing_criteria_results": row.per_testing_criteria_results,
            "data_source": row.data_source, "metadata": row.meta,
            "error": row.error or dict(NO_ERROR)}


def item_object(row: EvalOutputItemRecord) -> dict[str, Any]:
    return {"object": "eval.run.output_item", "id": row.id, "run_id": row.run_id,
            "eval_id": row.eval_id, "created_at": objects.unix(row.created_at),
            "status": row.status, "datasource_item_id": row.datasource_item_id,
            "datasource_item": row.datasource_item, "results": row.results,
            "sample": row.sample}


def listing(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's eval lists: ``first_id``/``last_id`` always there ("" when empty)."""
    return {"object": "list", "data": data, "has_more": has_more,
            "first_id": data[0]["id"] if data else "",
            "last_id": data[-1]["id"] if data else ""}


# -- request checks ------------------------------------------------------------------------

def _bad(exc: EvalRequestError) -> HTTPBadRequest:
    return HTTPBadRequest(exc.message, param=exc.param, code=exc.code)


def _body(body: Any, allowed: set[str], required: frozenset[str] = frozenset()
          ) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HTTPBadRequest("The request body must be a JSON object", code="invalid_value")
    extra = sorted(set(body) - allowed)
    if extra:
        raise HTTPBadRequest(f"{extra[0]}: not a field of this request", param=extra[0],
                             code="unknown_parameter")
    missing = sorted(required - set(body))
    if missing:
        raise HTTPBadRequest(f"{missing[0]} is required", param=missing[0],
                             code="missing_required_parameter")
    return body


def _name(value: Any, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise HTTPBadRequest(f"name: a string of at most {MAX_NAME} characters", param="name",
                             code="invalid_value")
    return value


def _metadata(value: Any) -> dict[str, str] | None:
    """OpenAI's metadata: at most 16 string pairs, keys <= 64 and values <= 512 long."""
    if value is None:
        return None
    if (not isinstance(value, dict) or len(value) > 16
            or any(not isinstance(v, str) or len(k) > 64 or len(v) > 512
                   for k, v in value.items())):
        raise HTTPBadRequest("metadata: at most 16 pairs of strings, keys of at most 64 and "
                             "values of at most 512 characters", param="metadata",
                             code="invalid_value")
    return value


def _data_source_config(raw: Any) -> dict[str, Any]:
    """The eval's ``data_source_config`` as OpenAI echoes a custom one: ``{type: custom,
    schema}``, the schema of the ``item`` (and ``sample``) namespaces."""
    param = "data_source_config"
    if not isinstance(raw, dict):
        raise HTTPBadRequest(f"{param}: expected an object", param=param, code="invalid_value")
    kind = raw.get("type")
    if kind in ("logs", "stored_completions"):
        raise HTTPBadRequest(
            f"{param}.type: Quanta does not store completions, so there are no {kind} to "
            "evaluate; use a 'custom' data source config with an item_schema and run it "
            "over an evals file or inline items", param=f"{param}.type",
            code="unsupported_value")
    if kind != "custom":
        raise HTTPBadRequest(f"{param}.type: expected 'custom', got {kind!r}",
                             param=f"{param}.type", code="invalid_value")
    extra = sorted(set(raw) - {"type", "item_schema", "include_sample_schema"})
    if extra:
        raise HTTPBadRequest(f"{param}.{extra[0]}: not a field of a custom data source "
                             "config", param=f"{param}.{extra[0]}", code="unknown_parameter")
    schema = raw.get("item_schema")
    try:
        check_item_schema(schema, f"{param}.item_schema")
    except EvalRequestError as exc:
        raise _bad(exc) from None
    with_sample = raw.get("include_sample_schema", False)
    if not isinstance(with_sample, bool):
        raise HTTPBadRequest(f"{param}.include_sample_schema: expected a boolean",
                             param=f"{param}.include_sample_schema", code="invalid_value")
    properties = {"item": schema, **({"sample": SAMPLE_SCHEMA} if with_sample else {})}
    return {"type": "custom", "schema": {"type": "object", "properties": properties,
                                         "required": list(properties)}}


def item_schema(row: EvalRecord) -> dict[str, Any] | None:
    """The JSON schema an eval's items must match."""
    return ((row.data_source_config.get("schema") or {}).get("properties") or {}).get("item")


class EvalsService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def _console(self) -> str:
        return self.registry.settings.console_url

    # -- evals ---------------------------------------------------------------------------

    def create_eval(self, tenant_id: str, body: Any) -> dict[str, Any]:
        body = _body(body, {"name", "metadata", "data_source_config", "testing_criteria"},
                     frozenset({"data_source_config", "testing_criteria"}))
        name = _name(body.get("name"), "Untitled eval")
        metadata = _metadata(body.get("metadata"))
        config = _data_source_config(body["data_source_config"])
        try:
            criteria = parse_criteria(body["testing_criteria"])
        except EvalRequestError as exc:
            raise _bad(exc) from None
        for index, criterion in enumerate(criteria):
            check_grader_models(self.registry, tenant_id, criterion.config,
                                f"testing_criteria[{index}].model")
        row = self.registry.evals.create(
            tenant_id=tenant_id, name=name, data_source_config=config,
            testing_criteria=[c.wire() for c in criteria], metadata=metadata)
        return eval_object(row)

    def _eval(self, tenant_id: str, eval_id: str) -> EvalRecord:
        try:
            return self.registry.evals.owned(tenant_id, eval_id)
        except NotFoundError:
            raise HTTPNotFound(f"No such eval: {eval_id}", param="eval_id",
                               code="not_found") from None

    def get_eval(self, tenant_id: str, eval_id: str) -> dict[str, Any]:
        return eval_object(self._eval(tenant_id, eval_id))

    def list_evals(self, tenant_id: str, after: str | None = None, limit: int | None = None,
                   order: str = "asc", order_by: str = "created_at") -> dict[str, Any]:
        _order(order)
        if order_by not in ("created_at", "updated_at"):
            raise HTTPBadRequest("order_by must be 'created_at' or 'updated_at'",
                                 param="order_by", code="invalid_value")
        try:
            rows, more = self.registry.evals.list(
                tenant_id, after=after, limit=objects.page_limit(limit, 20), order=order,
                order_by=order_by)
        except NotFoundError as exc:
            raise HTTPNotFound(str(exc), param="after") from None
        return listing([eval_object(r) for r in rows], more)

    def update_eval(self, tenant_id: str, eval_id: str, body: Any) -> dict[str, Any]:
        body = _body(body, {"name", "metadata"})
        self._eval(tenant_id, eval_id)
        name = _name(body.get("name"), "") or None
        metadata = _metadata(body.get("metadata"))
        return eval_object(self.registry.evals.update(
            tenant_id, eval_id, name=name, metadata=metadata,
            set_metadata="metadata" in body))

    def delete_eval(self, tenant_id: str, eval_id: str) -> dict[str, Any]:
        self._eval(tenant_id, eval_id)
        self.registry.evals.delete(tenant_id, eval_id)
        return {"object": "eval.deleted", "deleted": True, "eval_id": eval_id}

    # -- runs ----------------------------------------------------------------------------

    def create_run(self, tenant_id: str, eval_id: str, body: Any) -> dict[str, Any]:
        """Check the run whole (its items against the eval's schema, the messages each
        makes, the model) and queue it for a worker."""
        row = self._eval(tenant_id, eval_id)
        body = _body(body, {"name", "metadata", "data_source"}, frozenset({"data_source"}))
        metadata = _metadata(body.get("metadata"))
        try:
            source = parse_data_source(body["data_source"])
            items = self._items(tenant_id, source.file_id, source.content)
            check_items(items, item_schema(row), "data_source.source.id")
            check_messages(source, items, "data_source.input_messages")
        except EvalRequestError as exc:
            raise _bad(exc) from None
        if source.model is not None:
            try:
                usable_model(self.registry, tenant_id, source.model)
            except NotFoundError:
                raise HTTPBadRequest(f"data_source.model: the model {source.model} does not "
                                     "exist or you may not use it", param="data_source.model",
                                     code="model_not_found") from None
        name = _name(body.get("name"), source.model or "jsonl")
        run = self.registry.evals.create_run(
            tenant_id=tenant_id, eval_id=eval_id, name=name, model=source.model,
            data_source=source.wire(), metadata=metadata,
            criteria_ids=[Criterion.stored(c).id for c in row.testing_criteria])
        return run_object(run, self._console)

    def _items(self, tenant_id: str, file_id: str | None,
               content: list[dict[str, Any]] | None) -> list[SourceItem]:
        if content is not None:
            return content_items(content)
        assert file_id is not None
        param = "data_source.source.id"
        try:
            file = self.registry.get_file(tenant_id, file_id)
        except NotFoundError:
            raise EvalRequestError(f"{param}: no such file: {file_id}", param,
                                   code="file_not_found") from None
        if file.purpose != FilePurpose.EVALS:
            raise EvalRequestError(f"{param}: file {file_id} has purpose {file.purpose!r}, "
                                   "not 'evals'", param, code="invalid_file_purpose")
        return file_items(self.registry.blob_path(file.sha256), file.filename)

    def _run(self, tenant_id: str, eval_id: str, run_id: str) -> EvalRunRecord:
        self._eval(tenant_id, eval_id)
        try:
            return self.registry.evals.owned_run(tenant_id, eval_id, run_id)
        except NotFoundError:
            raise HTTPNotFound(f"No such eval run: {run_id}", param="run_id",
                               code="not_found") from None

    def get_run(self, tenant_id: str, eval_id: str, run_id: str) -> dict[str, Any]:
        return run_object(self._run(tenant_id, eval_id, run_id), self._console)

    def list_runs(self, tenant_id: str, eval_id: str, after: str | None = None,
                  limit: int | None = None, order: str = "asc",
                  status: str | None = None) -> dict[str, Any]:
        self._eval(tenant_id, eval_id)
        _order(order)
        if status is not None and status not in set(EvalRunStatus):
            raise HTTPBadRequest(f"status must be one of {', '.join(EvalRunStatus)}",
                                 param="status", code="invalid_value")
        try:
            rows, more = self.registry.evals.list_runs(
                tenant_id, eval_id, after=after, limit=objects.page_limit(limit, 20),
                order=order, status=status)
        except NotFoundError as exc:
            raise HTTPNotFound(str(exc), param="after") from None
        return listing([run_object(r, self._console) for r in rows], more)

    def cancel_run(self, tenant_id: str, eval_id: str, run_id: str) -> dict[str, Any]:
        """A queued run is canceled at once, one in progress at its worker's next beat
        (its items graded so far are kept); a finished run is answered as it is."""
        self._run(tenant_id, eval_id, run_id)
        return run_object(self.registry.evals.request_cancel(tenant_id, eval_id, run_id),
                          self._console)

    def delete_run(self, tenant_id: str, eval_id: str, run_id: str) -> dict[str, Any]:
        self._run(tenant_id, eval_id, run_id)
        self.registry.evals.delete_run(tenant_id, eval_id, run_id)
        return {"object": "eval.run.deleted", "deleted": True, "run_id": run_id}

    # -- output items --------------------------------------------------------------------

    def list_items(self, tenant_id: str, eval_id: str, run_id: str, after: str | None = None,
                   limit: int | None = None, order: str = "asc",
                   status: str | None = None) -> dict[str, Any]:
        self._run(tenant_id, eval_id, run_id)
        _order(order)
        if status is not None and status not in ITEM_STATUSES:
            raise HTTPBadRequest("status must be 'pass' or 'fail'", param="status",
                                 code="invalid_value")
        try:
            rows, more = self.registry.evals.list_items(
                tenant_id, eval_id, run_id, after=after,
                limit=objects.page_limit(limit, 20), order=order, status=status)
        except NotFoundError as exc:
            raise HTTPNotFound(str(exc), param="after") from None
        return listing([item_object(r) for r in rows], more)

    def get_item(self, tenant_id: str, eval_id: str, run_id: str,
                 item_id: str) -> dict[str, Any]:
        self._run(tenant_id, eval_id, run_id)
        try:
            return item_object(self.registry.evals.owned_item(tenant_id, eval_id, run_id,
                                                              item_id))
        except NotFoundError:
            raise HTTPNotFound(f"No such output item: {item_id}", param="output_item_id",
                               code="not_found") from None


def _order(order: str) -> None:
    if order not in ("asc", "desc"):
        raise HTTPBadRequest("order must be 'asc' or 'desc'", param="order",
                             code="invalid_value")

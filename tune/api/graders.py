"""OpenAI's alpha grader routes: validate a grader, or run it on one sample, before a job
is paid for. The graders themselves (``tune.graders``) are shared with reinforcement
training; here is what the API adds: the request checked (shape, sizes once templates are
expanded, the models a ``score_model`` grader asks limited to those the tenant may use),
and the run done in the grader pool (``tune.graders.pool``), never in the API's own
threads: a tenant over its share gets a 429, a run over its budget scores 0.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from quanta.registry import NotFoundError, Registry
from quanta.types import GraderType
from tune.api.errors import HTTPBadRequest, HTTPTooManyRequests, parse_body
from tune.api.models import usable_model
from tune.graders import (
    Grade,
    check_templates,
    grade_sample,
    run_response,
    score_models_of,
    template_fields,
)
from tune.graders.config import RunRequest, ValidateRequest
from tune.graders.pool import GraderBusy, GraderPool, RunFailed
from tune.graders.templates import (
    MAX_RENDERED_CHARS,
    TemplateError,
    rendered_length,
    sample_from_text,
)
from tune.graders.text_similarity import MAX_COMPARE_CHARS

MAX_ITEM_BYTES = 256 * 1024  # the item, as JSON


def check_grader_models(registry: Registry, tenant_id: str, grader: Any, param: str) -> None:
    """A score_model grader may ask a base model or one of the tenant's own adapters."""
    for model in score_models_of(grader):
        try:
            usable_model(registry, tenant_id, model, shared=False)
        except NotFoundError:
            raise HTTPBadRequest(f"The grader's model {model} does not exist or is not "
                                 "yours", param=param, code="model_not_available") from None


def check_sizes(request: RunRequest) -> None:
    """Refuse, naming the field, an item or expanded template past what a run handles."""
    if request.item is not None and len(json.dumps(request.item)) > MAX_ITEM_BYTES:
        raise HTTPBadRequest(f"item: at most {MAX_ITEM_BYTES} bytes as JSON", param="item",
                             code="invalid_value")
    sample, item = sample_from_text(request.model_sample), request.item or {}
    for param, template, leaf in template_fields(request.grader):
        most = MAX_RENDERED_CHARS
        if leaf.type == GraderType.TEXT_SIMILARITY:
            most = min(most, MAX_COMPARE_CHARS.get(leaf.evaluation_metric, most))
        length = rendered_length(template, item, sample, stop_after=most)
        if length > most:
            raise HTTPBadRequest(f"{param}: expands to more than {most} characters with this "
                                 "model_sample and item", param=param, code="invalid_value")


class GradersService:
    def __init__(self, registry: Registry, pool: GraderPool | None = None) -> None:
        settings = registry.settings
        self.registry = registry
        self.pool = pool or GraderPool(
            workers=settings.grader_workers, per_tenant=settings.grader_tenant_concurrency,
            budget_seconds=settings.grader_run_seconds,
            memory_bytes=settings.grader_run_memory_mb * 1024 * 1024)

    def _grader_request(self, tenant_id: str, model: type[Any], body: Any) -> Any:
        """A graders/run or /validate body, checked: shape, templates, the models it asks."""
        request = parse_body(model, body)
        try:
            check_templates(request.grader)
        except TemplateError as exc:
            raise HTTPBadRequest(str(exc), param="grader", code="invalid_value") from None
        check_grader_models(self.registry, tenant_id, request.grader, "grader")
        return request

    def validate_grader(self, tenant_id: str, body: Any) -> dict[str, Any]:
        with self._slot(tenant_id):
            request = self._grader_request(tenant_id, ValidateRequest, body)
        return {"grader": request.grader.model_dump(mode="json", exclude_none=True)}

    def run_grader(self, tenant_id: str, body: Any) -> dict[str, Any]:
        """Grade one sample, as a job would, in a process of the grader pool. The tenant's
        place is taken first: a request over its share costs a 429, not a validation."""
        with self._slot(tenant_id):
            request = self._grader_request(tenant_id, RunRequest, body)
            check_sizes(request)
            try:
                grade, seconds = self.pool.execute(grade_sample, request.grader,
                                                   request.model_sample, request.item,
                                                   self.registry.settings)
            except RunFailed as exc:
                flag = "unresponsive_reward_error" if exc.timed_out else "other_error"
                grade, seconds = Grade.failed(flag, str(exc)), self.pool.budget_seconds
        return run_response(request.grader, grade, seconds)

    @contextlib.contextmanager
    def _slot(self, tenant_id: str) -> Iterator[None]:
        """The tenant's place in the grader pool, or a 429 with ``Retry-After``."""
        try:
            with self.pool.slot(tenant_id):
                yield
        except GraderBusy as exc:  # only taking the place raises it
            raise HTTPTooManyRequests(str(exc), retry_after=exc.retry_after) from None

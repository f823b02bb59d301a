"""OpenAI's alpha grader routes: validate a grader, or run it on one sample, before a job
is paid for. The graders themselves (``tune.graders``) are shared with reinforcement
training; here is what the API adds: the request shapes checked, and the models a
``score_model`` grader asks limited to those the tenant may use.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from quanta.registry import NotFoundError, Registry
from tune.api.errors import HTTPBadRequest, invalid_request
from tune.api.models import usable_model
from tune.graders import check_templates, run_grader, score_models_of
from tune.graders.config import RunRequest, ValidateRequest
from tune.graders.templates import TemplateError


def check_grader_models(registry: Registry, tenant_id: str, grader: Any, param: str) -> None:
    """A score_model grader may ask a base model or one of the tenant's own adapters."""
    for model in score_models_of(grader):
        try:
            usable_model(registry, tenant_id, model, shared=False)
        except NotFoundError:
            raise HTTPBadRequest(f"The grader's model {model} does not exist or is not "
                                 "yours", param=param, code="model_not_available") from None


class GradersService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _grader_request(self, tenant_id: str, model: type[Any], body: Any) -> Any:
        """A graders/run or /validate body, checked: shape, templates, the models it asks."""
        try:
            request = model.model_validate(body)
            check_templates(request.grader)
        except ValidationError as exc:
            raise invalid_request(exc.errors()) from None
        except TemplateError as exc:
            raise HTTPBadRequest(str(exc), param="grader", code="invalid_value") from None
        check_grader_models(self.registry, tenant_id, request.grader, "grader")
        return request

    def validate_grader(self, tenant_id: str, body: Any) -> dict[str, Any]:
        request = self._grader_request(tenant_id, ValidateRequest, body)
        return {"grader": request.grader.model_dump(mode="json", exclude_none=True)}

    def run_grader(self, tenant_id: str, body: Any) -> dict[str, Any]:
        """Grade one sample, as a job would (a python grader runs in the sandbox)."""
        request = self._grader_request(tenant_id, RunRequest, body)
        return run_grader(request.grader, request.model_sample, request.item)

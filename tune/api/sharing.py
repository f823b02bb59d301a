"""OpenAI's checkpoint permissions, on Quanta's tenants: an owner shares a fine-tuned model.

``/v1/fine_tuning/checkpoints/{model}/permissions`` takes any fine-tuned model the caller
owns (an adapter or a checkpoint model); OpenAI's ``project_ids`` are tenant ids. A tenant
granted a model may serve it (both engines, gRPC) and fine-tune from it, never delete it
or read out its files; revoking takes effect on the next request, since every use
resolves through ``Registry.usable_adapter``. Anyone but the owner gets a 404, as for a
model that does not exist. What a grantee trains from a shared model carries its origin
(``derived_from``): usable while the grant stands, never shared on or exported.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from quanta.registry import AdapterRecord, GrantRecord, NotFoundError, Registry
from tune.api import objects
from tune.api.errors import HTTPBadRequest, HTTPNotFound, parse_body

DEFAULT_PAGE = 10  # OpenAI's default for this list


class CreatePermissions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_ids: list[str] = Field(min_length=1, max_length=100)


def permission_object(row: GrantRecord) -> dict[str, Any]:
    return {"id": row.id, "object": "checkpoint.permission",
            "created_at": objects.unix(row.created_at), "project_id": row.tenant_id}


class SharingService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _owned(self, tenant_id: str, model: str) -> AdapterRecord:
        try:
            return self.registry.resolve_adapter(tenant_id, model)
        except NotFoundError:
            raise HTTPNotFound(f"The model '{model}' does not exist",
                               param="fine_tuned_model_checkpoint",
                               code="model_not_found") from None

    def create(self, tenant_id: str, model: str, body: Any) -> dict[str, Any]:
        adapter = self._owned(tenant_id, model)
        if (adapter.config or {}).get("derived_from"):
            raise HTTPBadRequest(f"{model} was trained from a model another tenant shared "
                                 "with you: only that model's owner can share it",
                                 param="fine_tuned_model_checkpoint", code="not_shareable")
        request = parse_body(CreatePermissions, body)
        known = {tenant.id for tenant in self.registry.tenants.list()}
        anonymous = self.registry.settings.allow_anonymous
        for project in request.project_ids:
            if anonymous and project == self.registry.settings.default_tenant:
                raise HTTPBadRequest(f"{project} is the tenant requests without an API key act "
                                     "as (QUANTA_ALLOW_ANONYMOUS): sharing with it would share "
                                     "with anyone", param="project_ids", code="invalid_value")
            if project == tenant_id:
                raise HTTPBadRequest("A model is always usable by its owner; name other "
                                     "projects", param="project_ids", code="invalid_value")
            if project not in known:
                raise HTTPBadRequest(f"No such project: {project}", param="project_ids",
                                     code="invalid_value")
        rows = self.registry.permissions.grant(adapter.id, request.project_ids)
        return objects.page([permission_object(row) for row in rows], False)

    def list(self, tenant_id: str, model: str, project_id: str | None = None,
             after: str | None = None, limit: int | None = None,
             order: str = "descending") -> dict[str, Any]:
        adapter = self._owned(tenant_id, model)
        if order not in ("ascending", "descending"):
            raise HTTPBadRequest("order must be 'ascending' or 'descending'", param="order",
                                 code="invalid_value")
        rows = [row for row in self.registry.permissions.of_adapter(adapter.id)
                if project_id is None or row.tenant_id == project_id]
        if order == "ascending":
            rows.reverse()
        rows, more = objects.page_after(rows, after, objects.page_limit(limit, DEFAULT_PAGE))
        return objects.page([permission_object(row) for row in rows], more)

    def delete(self, tenant_id: str, model: str, permission_id: str) -> dict[str, Any]:
        adapter = self._owned(tenant_id, model)
        if not self.registry.permissions.revoke(adapter.id, permission_id):
            raise HTTPNotFound(f"No such permission: {permission_id}", param="permission_id",
                               code="not_found")
        return {"id": permission_id, "object": "checkpoint.permission", "deleted": True}

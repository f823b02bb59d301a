"""The adapter_permission table's row API: an owner shares an adapter with other tenants.

Who may grant (the owner only) and what a grant allows (use: serve, fine-tune from; never
delete or download) are the services' rules; the registry's part is
``Registry.usable_adapter``, which every use goes through, so a revoked grant stops
working on the next request, whatever the surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from quanta.registry import tables as t
from quanta.registry.db import insert_for
from quanta.registry.ids import new_id
from quanta.registry.records import AdapterRecord, GrantRecord

if TYPE_CHECKING:
    from quanta.registry.registry import Registry


class PermissionRows:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def grant(self, adapter_id: str, tenant_ids: Sequence[str]) -> list[GrantRecord]:
        """One permission per tenant (an existing one is kept, not duplicated; two grants
        racing insert it once: ON CONFLICT DO NOTHING)."""
        wanted = list(dict.fromkeys(tenant_ids))
        with self._registry.session() as s:
            insert = insert_for(s)
            for tenant_id in wanted:
                s.execute(insert(t.AdapterPermission).values(
                    id=new_id("cp"), adapter_id=adapter_id, tenant_id=tenant_id,
                    created_at=datetime.now(UTC)).on_conflict_do_nothing(
                    index_elements=["adapter_id", "tenant_id"]))
        with self._registry.session() as s:
            rows = {p.tenant_id: p for p in GrantRecord.all(s.scalars(
                select(t.AdapterPermission).where(t.AdapterPermission.adapter_id == adapter_id,
                                                  t.AdapterPermission.tenant_id.in_(wanted))))}
        return [rows[tenant_id] for tenant_id in wanted]

    def of_adapter(self, adapter_id: str) -> list[GrantRecord]:
        """The adapter's permissions, newest first."""
        with self._registry.session() as s:
            return GrantRecord.all(s.scalars(select(t.AdapterPermission)
                                  .where(t.AdapterPermission.adapter_id == adapter_id)
                                  .order_by(t.AdapterPermission.created_at.desc(),
                                            t.AdapterPermission.id.desc())))

    def revoke(self, adapter_id: str, permission_id: str) -> bool:
        with self._registry.session() as s:
            gone = s.execute(delete(t.AdapterPermission).where(
                t.AdapterPermission.id == permission_id,
                t.AdapterPermission.adapter_id == adapter_id))
            return gone.rowcount == 1

    def shared_with(self, tenant_id: str) -> list[AdapterRecord]:
        """Other tenants' adapters this tenant may use, oldest first."""
        with self._registry.session() as s:
            return AdapterRecord.all(s.scalars(select(t.Adapter).join(
                t.AdapterPermission, t.AdapterPermission.adapter_id == t.Adapter.id)
                .where(t.AdapterPermission.tenant_id == tenant_id)
                .order_by(t.Adapter.created_at)))

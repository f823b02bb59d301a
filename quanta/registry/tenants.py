"""The tenant tables' row API: tenants and API keys (stored as digests only).

The rules (key format, hashing, constant-time checks, anonymous local use) are
``quanta.tenancy``'s; this module only reads and writes the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from quanta.registry import tables as t
from quanta.registry.db import insert_for
from quanta.registry.errors import ConflictError, NotFoundError
from quanta.registry.ids import new_id
from quanta.registry.records import ApiKeyRecord, TenantRecord

if TYPE_CHECKING:
    from quanta.registry.registry import Registry


class TenantRows:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def ensure(self, tenant_id: str, name: str | None = None) -> TenantRecord:
        """The tenant, created if it does not exist yet (also when several processes
        start at once and all create it: one insert wins, the others find it)."""
        with self._registry.session() as s:
            tenant = s.get(t.Tenant, tenant_id)
            if tenant is None:
                s.execute(insert_for(s)(t.Tenant)
                          .values(id=tenant_id, name=name or tenant_id, created_at=t.utcnow())
                          .on_conflict_do_nothing(index_elements=["id"]))
                tenant = s.get(t.Tenant, tenant_id)
            return TenantRecord.of(tenant)

    def create(self, tenant_id: str, name: str | None = None) -> TenantRecord:
        with self._registry.session() as s:
            if s.get(t.Tenant, tenant_id) is not None:
                raise ConflictError(f"tenant {tenant_id!r} already exists")
            tenant = t.Tenant(id=tenant_id, name=name or tenant_id)
            s.add(tenant)
            s.flush()
            return TenantRecord.of(tenant)

    def list(self) -> list[TenantRecord]:
        with self._registry.session() as s:
            return TenantRecord.all(s.scalars(select(t.Tenant).order_by(t.Tenant.id)))

    def add_key(self, tenant_id: str, key_hash: str, prefix: str,
                name: str | None = None) -> ApiKeyRecord:
        with self._registry.session() as s:
            if s.get(t.Tenant, tenant_id) is None:
                raise NotFoundError(f"tenant {tenant_id!r} does not exist")
            row = t.ApiKey(id=new_id("key"), tenant_id=tenant_id, key_hash=key_hash,
                           prefix=prefix, name=name)
            s.add(row)
            s.flush()
            return ApiKeyRecord.of(row)

    def revoke_key(self, key_id: str) -> None:
        with self._registry.session() as s:
            row = s.get(t.ApiKey, key_id)
            if row is None:
                raise NotFoundError(f"API key {key_id!r} does not exist")
            row.revoked_at = t.utcnow()

    def keys(self, tenant_id: str | None = None) -> list[ApiKeyRecord]:
        query = select(t.ApiKey).order_by(t.ApiKey.created_at)
        if tenant_id is not None:
            query = query.where(t.ApiKey.tenant_id == tenant_id)
        with self._registry.session() as s:
            return ApiKeyRecord.all(s.scalars(query))

    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with self._registry.session() as s:
            return ApiKeyRecord.maybe(s.scalar(select(t.ApiKey)
                                               .where(t.ApiKey.key_hash == key_hash)))


def revoke_keys_named(session: Session, tenant_id: str, name: str) -> int:
    """Revoke the tenant's live keys named ``name``, in the caller's transaction; how
    many. A piece of work (an eval run, a batch) mints a key named for itself; a worker
    killed before it revoked its key leaves it live, and whatever ends or resumes the
    work revokes it here, with the write that ends or claims it."""
    return session.execute(update(t.ApiKey).where(
        t.ApiKey.tenant_id == tenant_id, t.ApiKey.name == name,
        t.ApiKey.revoked_at.is_(None)).values(revoked_at=t.utcnow())).rowcount

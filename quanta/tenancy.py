"""Tenants, API keys and ownership checks, shared by every HTTP and gRPC surface.

Keys look like ``qk-<tenant-prefix>-<random>``; only their sha256 is stored and lookups
compare digests in constant time. With ``QUANTA_ALLOW_ANONYMOUS`` (the localhost
default) a request without a key acts as the default tenant, so a single user needs
no key at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from quanta.registry import ConflictError, NotFoundError, Registry
from quanta.registry import tables as t
from quanta.registry.ids import check_name, new_id
from quanta.registry.tables import utcnow

KEY_PREFIX = "qk-"


class AuthError(Exception):
    """No valid API key: maps to HTTP 401 / gRPC UNAUTHENTICATED."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant, and the key used (None for anonymous local use)."""

    tenant_id: str
    key_id: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_tenant(registry: Registry, tenant_id: str, name: str | None = None) -> t.Tenant:
    check_name(tenant_id, "tenant id")
    with registry.session() as s:
        if s.get(t.Tenant, tenant_id) is not None:
            raise ConflictError(f"tenant {tenant_id!r} already exists")
        tenant = t.Tenant(id=tenant_id, name=name or tenant_id)
        s.add(tenant)
    return tenant


def list_tenants(registry: Registry) -> list[t.Tenant]:
    with registry.session() as s:
        return list(s.scalars(select(t.Tenant).order_by(t.Tenant.id)))


def create_key(registry: Registry, tenant_id: str, name: str | None = None) -> tuple[t.ApiKey, str]:
    """Create an API key; returns the row and the plaintext key, which is never stored."""
    with registry.session() as s:
        if s.get(t.Tenant, tenant_id) is None:
            raise NotFoundError(f"tenant {tenant_id!r} does not exist")
        plaintext = f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"
        row = t.ApiKey(id=new_id("key"), tenant_id=tenant_id, key_hash=hash_key(plaintext),
                       prefix=plaintext[:10], name=name)
        s.add(row)
    return row, plaintext


def revoke_key(registry: Registry, key_id: str) -> None:
    with registry.session() as s:
        row = s.get(t.ApiKey, key_id)
        if row is None:
            raise NotFoundError(f"API key {key_id!r} does not exist")
        row.revoked_at = utcnow()


def list_keys(registry: Registry, tenant_id: str | None = None) -> list[t.ApiKey]:
    with registry.session() as s:
        query = select(t.ApiKey).order_by(t.ApiKey.created_at)
        if tenant_id is not None:
            query = query.where(t.ApiKey.tenant_id == tenant_id)
        return list(s.scalars(query))


def authenticate(registry: Registry, key: str | None) -> Principal:
    """Map a presented key (or none) to a principal; raises AuthError.

    The database lookup is by digest (an index seek, not a secret comparison); the
    final check re-compares digests with ``hmac.compare_digest``.
    """
    if not key:
        if registry.settings.allow_anonymous:
            return Principal(registry.settings.default_tenant)
        raise AuthError("Missing API key: send 'Authorization: Bearer <key>'")
    digest = hash_key(key)
    with registry.session() as s:
        row = s.scalar(select(t.ApiKey).where(t.ApiKey.key_hash == digest))
        if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at:
            raise AuthError("Incorrect API key provided")
        return Principal(row.tenant_id, row.id)


def bearer_token(header: str | None) -> str | None:
    """Extract the key from an ``Authorization: Bearer <key>`` header value."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None

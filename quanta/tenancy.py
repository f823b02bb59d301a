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

from quanta.config import Settings
from quanta.registry import ApiKeyRecord, Registry, TenantRecord
from quanta.registry.ids import check_name

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


def create_tenant(registry: Registry, tenant_id: str, name: str | None = None) -> TenantRecord:
    return registry.tenants.create(check_name(tenant_id, "tenant id"), name)


def list_tenants(registry: Registry) -> list[TenantRecord]:
    return registry.tenants.list()


def create_key(registry: Registry, tenant_id: str, name: str | None = None
               ) -> tuple[ApiKeyRecord, str]:
    """Create an API key; returns the row and the plaintext key, which is never stored."""
    plaintext = f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"
    row = registry.tenants.add_key(tenant_id, hash_key(plaintext), plaintext[:10], name)
    return row, plaintext


def revoke_key(registry: Registry, key_id: str) -> None:
    registry.tenants.revoke_key(key_id)


def list_keys(registry: Registry, tenant_id: str | None = None) -> list[ApiKeyRecord]:
    return registry.tenants.keys(tenant_id)


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
    row = registry.tenants.key_by_hash(digest)
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at:
        raise AuthError("Incorrect API key provided")
    return Principal(row.tenant_id, row.id)


def check_metrics_token(settings: Settings, authorization: str | None) -> None:
    """``/metrics`` needs ``QUANTA_METRICS_TOKEN`` as a bearer token when one is set."""
    expected = settings.metrics_token
    if expected is None:
        return
    presented = bearer_token(authorization) or ""
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise AuthError("/metrics needs the metrics token: send 'Authorization: Bearer "
                        "<QUANTA_METRICS_TOKEN>'")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_bind(settings: Settings, host: str) -> None:
    """Refuse anonymous access on a server other machines can reach, unless the
    operator asked for it in so many words (``QUANTA_ALLOW_ANONYMOUS=true``).

    Anonymous access is the localhost default: on a loopback bind only this machine's
    users can reach it. Raises ValueError (the CLI's exit code 2) with what to set.
    """
    explicit = "allow_anonymous" in settings.model_fields_set
    if settings.allow_anonymous and not explicit and host not in LOOPBACK_HOSTS:
        raise ValueError(
            f"--host {host} is reachable from other machines, and requests without an API "
            "key would act as the default tenant: set QUANTA_ALLOW_ANONYMOUS=false (keys "
            "required; create them with `quanta keys create`) or, to allow it anyway, "
            "QUANTA_ALLOW_ANONYMOUS=true")


def bearer_token(header: str | None) -> str | None:
    """Extract the key from an ``Authorization: Bearer <key>`` header value."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None

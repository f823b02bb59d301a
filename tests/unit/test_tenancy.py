"""Tenants and API keys: hashed at rest, constant-time compare, revocation takes effect at once."""

from __future__ import annotations

import pytest

from quanta.registry import ConflictError, NotFoundError, Registry
from quanta.tenancy import (
    AuthError,
    authenticate,
    bearer_token,
    create_key,
    create_tenant,
    list_keys,
    revoke_key,
)


def test_key_authenticates_its_tenant(registry: Registry) -> None:
    create_tenant(registry, "acme")
    row, key = create_key(registry, "acme", "ci")
    assert authenticate(registry, key).tenant_id == "acme"
    assert authenticate(registry, key).key_id == row.id


def test_keys_are_stored_hashed(registry: Registry) -> None:
    create_tenant(registry, "acme")
    _, key = create_key(registry, "acme")
    assert key not in {k.key_hash for k in list_keys(registry)}
    db = registry.settings.resolved_home / "registry.db"
    registry.engine.dispose()
    assert key.encode() not in db.read_bytes()
    for wal in db.parent.glob("registry.db-*"):
        assert key.encode() not in wal.read_bytes()


def test_wrong_and_revoked_keys_fail(registry: Registry) -> None:
    create_tenant(registry, "acme")
    row, key = create_key(registry, "acme")
    with pytest.raises(AuthError):
        authenticate(registry, key + "x")
    revoke_key(registry, row.id)
    with pytest.raises(AuthError):
        authenticate(registry, key)


def test_anonymous_is_the_default_tenant_only_when_allowed(registry: Registry) -> None:
    assert authenticate(registry, None).tenant_id == "local"
    registry.settings.allow_anonymous = False
    with pytest.raises(AuthError):
        authenticate(registry, None)


def test_tenant_rules(registry: Registry) -> None:
    create_tenant(registry, "acme")
    with pytest.raises(ConflictError):
        create_tenant(registry, "acme")
    with pytest.raises(ValueError):
        create_tenant(registry, "../evil")
    with pytest.raises(NotFoundError):
        create_key(registry, "nobody")


@pytest.mark.parametrize(("header", "expected"), [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
    (None, None), ("", None),
])
def test_bearer_token(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected

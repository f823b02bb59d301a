"""The artifact registry: rows in SQLite/PostgreSQL, bytes in a content-addressed store."""

from quanta.registry.errors import ConflictError, CorruptBlobError, NotFoundError, RegistryError
from quanta.registry.registry import Registry, StoredTree, VerifyReport

__all__ = [
    "ConflictError",
    "CorruptBlobError",
    "NotFoundError",
    "Registry",
    "RegistryError",
    "StoredTree",
    "VerifyReport",
]

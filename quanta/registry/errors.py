"""Typed registry errors; each surface (HTTP, gRPC, CLI) maps them to its codes in one place."""

from __future__ import annotations


class RegistryError(Exception):
    """Base class for every error the registry raises."""


class NotFoundError(RegistryError):
    """The artifact does not exist, or the caller's tenant may not see it."""


class ConflictError(RegistryError):
    """The write would break a uniqueness or lineage rule."""


class CorruptBlobError(RegistryError):
    """A blob's content no longer matches its sha256 (bit rot, tampering, partial write)."""

    def __init__(self, sha256: str, detail: str = "content does not match its sha256") -> None:
        super().__init__(f"blob {sha256[:12]}: {detail}")
        self.sha256 = sha256

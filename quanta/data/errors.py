"""The one exception the data layer raises, so every surface can map it to a 400 in one place."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset file (or record) is unreadable or breaks its format's schema.

    ``errors`` holds every problem found (capped), each already prefixed with
    ``file:line:`` so a user can jump to it; ``str(exc)`` lists them all.
    """

    def __init__(self, message: str, errors: list[str] | None = None, path: str | None = None):
        self.errors: list[str] = list(errors) if errors else [message]
        self.path = path
        super().__init__(message)

    @classmethod
    def from_errors(cls, path: str, errors: list[str]) -> DatasetError:
        """Build one exception whose message lists all ``errors`` found in ``path``."""
        if len(errors) == 1:
            return cls(errors[0], errors, path)
        body = "\n".join(f"  {e}" for e in errors)
        return cls(f"{path}: {len(errors)} errors\n{body}", errors, path)

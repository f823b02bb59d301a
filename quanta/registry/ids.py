"""OpenAI-style identifiers (``file-…``, ``ftjob-…``) and name validation."""

from __future__ import annotations

import re
import secrets

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def new_id(prefix: str) -> str:
    """A random id such as ``ftjob-3f9a0c…`` (24 hex characters: no collisions in practice)."""
    return f"{prefix}-{secrets.token_hex(12)}"


def check_name(value: str, what: str = "name") -> str:
    """Accept lower-case slugs only, so names can never escape a directory or a URL segment."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):  # "$" alone admits "x\n"
        raise ValueError(
            f"invalid {what} {value!r}: use 1-64 characters from a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return value

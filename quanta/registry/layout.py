"""How the registry lays things out, shared by its writer and its housekeeping.

The registry (``registry.py``) writes trees and staging directories; housekeeping
(``housekeeping.py``) verifies, collects and sweeps them. Both import these names from
here, so neither imports the other at run time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from quanta.registry import tables as t

MANIFEST_KIND = "quanta.tree/v1"  # the "kind" of a directory artifact's manifest blob
MAX_MANIFEST_BYTES = 16 << 20
STAGING_DIR = "tmp"  # under QUANTA_HOME: scratch space of exports and imports
UPLOADS_DIR = "uploads"  # under QUANTA_HOME: uploads streaming in (the tune API)
LAST_VERIFY = "last-verify.json"  # under QUANTA_HOME: counts of the latest verify


def record_tree(session: Session, sha256: str, files: dict[str, dict[str, Any]]) -> None:
    """Mark a manifest blob as a tree and record its members (idempotent)."""
    session.execute(update(t.Blob).where(t.Blob.sha256 == sha256).values(is_tree=True))
    known = set(session.scalars(select(t.TreeMember.path)
                                .where(t.TreeMember.tree_sha256 == sha256)))
    session.add_all(t.TreeMember(tree_sha256=sha256, path=rel, member_sha256=info["sha256"])
                    for rel, info in files.items() if rel not in known)
    session.flush()

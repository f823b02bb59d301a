"""Garbage collection and verification: safe to run from cron while the registry is in use.

What references what is in the database: artifact rows name a blob, and a tree blob's
members are ``tree_member`` rows (recorded when the registry writes the tree). So
collecting garbage is one ``DELETE ... RETURNING`` over the blob table, whatever the
store's size, and no blob's *content* decides anything: an uploaded dataset that looks
like a manifest is just a file.

Collection and writers exclude each other for the moment that matters: collection
deletes dead rows and their bytes inside one transaction holding the blob lock
(``db.lock_blobs``; on SQLite the database's write lock), and a writer claims a blob's
row under the same lock before it commits the bytes. Leftovers are swept only when
their writer (a process on this host) is dead, or, for another host's names and
orphan blobs, once older than ``QUANTA_SWEEP_GRACE`` seconds: a temporary file or a
staging directory of a live writer here is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from quanta.registry import tables as t
from quanta.registry.cache import CACHED_BLOBS, RECORDS, VerifiedCopies
from quanta.registry.db import lock_blobs
from quanta.registry.errors import CorruptBlobError, NotFoundError
from quanta.registry.layout import (
    LAST_VERIFY,
    MANIFEST_KIND,
    MAX_MANIFEST_BYTES,
    STAGING_DIR,
    UPLOADS_DIR,
    record_tree,
)
from quanta.registry.store import LocalBlobStore, is_sha256, sha256_file, sweep_abandoned

if TYPE_CHECKING:
    from quanta.registry.registry import Registry

# Tables whose rows name a blob (directly, or a tree whose members are referenced too).
ROOT_TABLES = (t.File, t.BaseModelRow, t.Adapter, t.Export, t.Checkpoint, t.UploadPart)
TREE_TABLES = (t.BaseModelRow, t.Adapter, t.Export, t.Checkpoint)  # files are never trees


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # in the store, no row
    orphans_collectable: int = 0  # of those, old enough for gc to remove now
    temp_removed: int = 0
    staging_removed: int = 0
    cache_checked: int = 0
    cache_corrupt: list[str] = field(default_factory=list)  # removed; rebuilt on next use

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing


@dataclass
class CollectReport:
    blobs_removed: int = 0
    orphans_removed: int = 0
    temp_removed: int = 0
    staging_removed: int = 0


def _named_by_a_row(sha: Any) -> Any:
    return or_(*(exists().where(table.sha256 == sha) for table in ROOT_TABLES))


def _referenced() -> Any:
    """SQL condition: the blob row is named by an artifact row or is a member of a tree
    that is."""
    member = t.TreeMember
    return or_(_named_by_a_row(t.Blob.sha256),
               exists().where(member.member_sha256 == t.Blob.sha256,
                              _named_by_a_row(member.tree_sha256)))


def referenced_shas(session: Session) -> set[str]:
    """Every blob some artifact needs (rows' blobs and their trees' members)."""
    roots: set[str] = set()
    for table in ROOT_TABLES:
        roots.update(session.scalars(select(table.sha256)))
    members = session.scalars(select(t.TreeMember.member_sha256)
                              .where(_named_by_a_row(t.TreeMember.tree_sha256)))
    return roots | set(members)


def collect_garbage(registry: Registry, *, sweep: bool = True,
                    wait: bool = True) -> CollectReport:
    """Delete unreferenced blobs (rows, then bytes, in one locked transaction); with
    ``sweep``, also orphan blobs, temporary files and staging directories of dead writers
    or older than the grace period. With ``wait=False`` it does nothing while a writer
    holds the blob lock (a later collection finds the same garbage)."""
    report = CollectReport()
    grace = registry.settings.sweep_grace
    with registry.session() as s:
        if not lock_blobs(s, exclusive=True, wait=wait):
            return report
        dead = list(s.scalars(delete(t.Blob).where(~_referenced()).returning(t.Blob.sha256),
                              execution_options={"synchronize_session": False}))
        for sha in dead:
            registry.store.delete(sha)
        report.blobs_removed = len(dead)
        if sweep:
            known = set(s.scalars(select(t.Blob.sha256)))
            for sha in set(registry.store.list()) - known:
                try:
                    old = time.time() - registry.store.mtime(sha) > grace
                except (FileNotFoundError, NotFoundError):
                    continue
                if old:
                    registry.store.delete(sha)
                    report.orphans_removed += 1
    if sweep:
        report.temp_removed = _sweep_temp(registry)
        report.staging_removed = sweep_staging(registry)
    return report


def _sweep_temp(registry: Registry) -> int:
    if isinstance(registry.store, LocalBlobStore):
        return registry.store.clean_tmp(registry.settings.sweep_grace)
    return 0


def sweep_staging(registry: Registry) -> int:
    """Remove what dead processes left in ``QUANTA_HOME``: staging directories (``tmp/``),
    partial uploads (``uploads/``) and half-built cache copies."""
    grace = registry.settings.sweep_grace
    home = registry.settings.resolved_home
    cache = registry.settings.cache_dir
    # In the cache, finished copies are verify's business, not the sweep's.
    return (sweep_abandoned(home / STAGING_DIR, grace)
            + sweep_abandoned(home / UPLOADS_DIR, grace)
            + sweep_abandoned(cache, grace, only=_is_cache_temp)
            + sweep_abandoned(cache / CACHED_BLOBS, grace, only=_is_cache_temp))


def _is_cache_temp(name: str) -> bool:
    """A copy being built: ``.<owner tag><sha256>...`` (see ``Registry.materialize`` and
    ``store._write_verified``)."""
    return name.startswith(".") and name != RECORDS


def verify(registry: Registry) -> VerifyReport:
    """Re-hash every blob the registry knows and every materialised copy; sweep what dead
    writers left. Corrupt cache copies are removed (the store still holds the truth)."""
    report = VerifyReport()
    report.temp_removed = _sweep_temp(registry)
    report.staging_removed = sweep_staging(registry)
    with registry.session() as s:
        known = set(s.scalars(select(t.Blob.sha256)))
        needed = referenced_shas(s)
        trees = set(s.scalars(select(t.Blob.sha256).where(t.Blob.is_tree)))
    suspects: list[tuple[str, str]] = []
    for sha in sorted(known | needed):
        report.checked += 1
        try:
            if registry.store.hash_of(sha) != sha:
                suspects.append(("corrupt", sha))
        except NotFoundError:
            suspects.append(("missing", sha))
    if suspects:
        # A collection may have removed them while we hashed: look again with it excluded
        # (the lock, and on SQLite the write lock this no-op update takes), and count only
        # those still known and still bad.
        shas = [sha for _, sha in suspects]
        with registry.session() as s:
            lock_blobs(s, exclusive=True)
            s.execute(update(t.Blob).where(t.Blob.sha256.in_(shas))
                      .values(bytes=t.Blob.bytes))
            still = set(s.scalars(select(t.Blob.sha256))) | referenced_shas(s)
            for kind, sha in suspects:
                if sha in still and not _intact(registry, sha):
                    getattr(report, kind).append(sha)
    grace = registry.settings.sweep_grace
    for sha in sorted(set(registry.store.list()) - known):
        report.orphans.append(sha)
        try:
            report.orphans_collectable += time.time() - registry.store.mtime(sha) > grace
        except (FileNotFoundError, NotFoundError):
            continue
    _verify_cache(registry, trees, report)
    record_verify(registry, report)
    return report


def record_verify(registry: Registry, report: VerifyReport) -> None:
    """Keep the counts of the latest verification (``LAST_VERIFY`` in this node's home),
    what the tune API shows tenants instead of re-hashing the registry per request."""
    home = registry.settings.resolved_home
    summary = {"finished_at": int(time.time()), "ok": report.ok, "checked": report.checked,
               "corrupt": len(report.corrupt), "missing": len(report.missing),
               "orphans": len(report.orphans)}
    partial = home / f".{LAST_VERIFY}.{os.getpid()}"
    partial.write_text(json.dumps(summary))
    os.replace(partial, home / LAST_VERIFY)


def last_verify(registry: Registry) -> dict[str, Any] | None:
    """The latest verification's counts (``record_verify``), or None if none ran here."""
    try:
        return json.loads((registry.settings.resolved_home / LAST_VERIFY).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _intact(registry: Registry, sha: str) -> bool:
    try:
        return registry.store.hash_of(sha) == sha
    except NotFoundError:
        return False


def _verify_cache(registry: Registry, trees: set[str], report: VerifyReport) -> None:
    cache = registry.settings.cache_dir
    if not cache.is_dir():
        return
    copies = VerifiedCopies(cache)
    for directory in sorted(cache.iterdir()):
        if directory.name == RECORDS or not directory.is_dir() or \
                directory.name not in trees:
            continue
        report.cache_checked += 1
        try:
            files = registry.read_manifest(directory.name)
        except (CorruptBlobError, NotFoundError, OSError):
            continue  # the tree itself is reported above
        if copies.rehash(directory, files) is False:  # None: being replaced right now
            report.cache_corrupt.append(directory.name)
            shutil.rmtree(directory, ignore_errors=True)
    blobs = cache / CACHED_BLOBS  # single-file copies (S3 stores)
    if blobs.is_dir():
        for path in sorted(blobs.iterdir()):
            sha = path.name[:64]
            if _is_cache_temp(path.name) or not is_sha256(sha):
                continue  # being written (swept above once its writer is dead)
            report.cache_checked += 1
            try:
                intact = sha256_file(path) == sha
            except FileNotFoundError:
                continue  # replaced or removed meanwhile: nothing to judge
            if not intact:
                report.cache_corrupt.append(sha)
                path.unlink(missing_ok=True)


def backfill_trees(registry: Registry) -> int:
    """Record trees written before the registry recorded them (revision 0002): the blobs
    of base-model, adapter, checkpoint and directory-export rows. Only rows' own blobs are
    read, never uploads. Returns how many trees were recorded.

    Fails closed: a manifest the store holds but cannot hand over now (a permission or
    network error) raises, since GC would not know that tree's members and would collect
    them. A blob the store does not hold is skipped (verify reports it missing)."""
    with registry.session() as s:
        candidates: set[str] = set()
        for table in TREE_TABLES:
            candidates.update(s.scalars(select(table.sha256).join(
                t.Blob, t.Blob.sha256 == table.sha256).where(
                ~t.Blob.is_tree, t.Blob.bytes <= MAX_MANIFEST_BYTES)))
        done = 0
        for sha in sorted(candidates):
            if not registry.store.exists(sha):
                continue
            try:
                with registry.store.open(sha) as fh:
                    head = fh.read(1)  # a GGUF export starts with b"GGUF": not read further
                    raw = head + fh.read(MAX_MANIFEST_BYTES) if head == b"{" else b""
            except (NotFoundError, OSError) as exc:
                raise RuntimeError(
                    f"cannot read blob {sha} to record whether it is a tree (registry "
                    f"revision 0002): {exc}; open the registry again once the store is "
                    "readable") from exc
            manifest = _json_manifest(raw, MANIFEST_KIND) if raw else None
            if manifest is not None:
                record_tree(s, sha, _members_with_rows(s, manifest))
                done += 1
    return done


def _members_with_rows(session: Session, files: dict[str, Any]) -> dict[str, Any]:
    """The manifest's well-formed entries whose blob has a row (``tree_member`` refers to
    ``blob``); an entry without one was never collectable, and verify reports the tree."""
    entries = {rel: info for rel, info in files.items()
               if isinstance(info, dict) and is_sha256(str(info.get("sha256", "")))}
    shas = {info["sha256"] for info in entries.values()}
    rows = set(session.scalars(select(t.Blob.sha256).where(t.Blob.sha256.in_(shas))))
    return {rel: info for rel, info in entries.items() if info["sha256"] in rows}


def _json_manifest(raw: bytes, kind: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(doc, dict) and doc.get("kind") == kind and isinstance(doc.get("files"), dict):
        return doc["files"]
    return None

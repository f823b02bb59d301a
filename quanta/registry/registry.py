"""The registry: one façade over the database rows and the blob store.

Services never touch the store directly. They hand the registry a file or a
directory; the registry stores the bytes first (atomically, content-addressed) and
commits the row last, so a crash leaves either nothing or a complete artifact.
Directory artifacts (models, adapters, checkpoints) are stored as one blob per
file plus a JSON manifest blob; the manifest's sha256 is the artifact's sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from quanta.config import Settings, get_settings
from quanta.registry import housekeeping
from quanta.registry import tables as t
from quanta.registry.batches import BatchRows
from quanta.registry.cache import CACHED_BLOBS, VerifiedCopies
from quanta.registry.db import (
    insert_for,
    lock_blobs,
    make_engine,
    migrate,
    session_factory,
    transaction,
)
from quanta.registry.errors import ConflictError, CorruptBlobError, NotFoundError
from quanta.registry.evals import EvalRows
from quanta.registry.export_jobs import ExportJobRows
from quanta.registry.housekeeping import VerifyReport
from quanta.registry.ids import new_id
from quanta.registry.jobs import JobRows
from quanta.registry.layout import (
    MANIFEST_KIND,
    MAX_MANIFEST_BYTES,
    STAGING_DIR,
    UPLOADS_DIR,
    record_tree,
)
from quanta.registry.permissions import PermissionRows
from quanta.registry.records import (
    AdapterRecord,
    BaseModelRecord,
    CheckpointRecord,
    ExportRecord,
    FileRecord,
    JobRecord,
    Record,
)
from quanta.registry.serve_endpoints import ServeEndpointRows
from quanta.registry.store import (
    BlobStore,
    LocalBlobStore,
    is_sha256,
    open_store,
    owner_tag,
    sha256_file,
    sweep_abandoned,
)
from quanta.registry.tenants import TenantRows
from quanta.registry.uploads import UploadRows
from quanta.types import ArtifactKind, ExportFormat, FilePurpose

log = logging.getLogger(__name__)

ARTIFACT_TABLES: dict[ArtifactKind, type[t.Base]] = {
    ArtifactKind.FILE: t.File,
    ArtifactKind.BASE_MODEL: t.BaseModelRow,
    ArtifactKind.ADAPTER: t.Adapter,
    ArtifactKind.EXPORT: t.Export,
    ArtifactKind.CHECKPOINT: t.Checkpoint,
    ArtifactKind.JOB: t.Job,
}
ARTIFACT_RECORDS: dict[ArtifactKind, type[Record]] = {
    ArtifactKind.FILE: FileRecord,
    ArtifactKind.BASE_MODEL: BaseModelRecord,
    ArtifactKind.ADAPTER: AdapterRecord,
    ArtifactKind.EXPORT: ExportRecord,
    ArtifactKind.CHECKPOINT: CheckpointRecord,
    ArtifactKind.JOB: JobRecord,
}


@dataclass
class StoredTree:
    """A directory stored in the registry: its manifest hash, total size and file blobs."""

    sha256: str
    bytes: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


def adapter_name(base_model_id: str, tenant_id: str, suffix: str | None, id_: str) -> str:
    """OpenAI's fine-tuned model name, ``ft:<base>:<tenant>:<suffix>:<8 of the id>`` (an
    adapter's id and its job's share those 8 characters)."""
    return f"ft:{base_model_id}:{tenant_id}:{suffix or 'adapter'}:{id_.split('-', 1)[-1][:8]}"


class Registry:
    """Rows + blobs. Open one per process with :meth:`open`.

    Artifacts (files, base models, adapters, exports) are methods here; the job, export
    job, upload, permission, serve endpoint and tenant tables have row APIs of their own,
    :attr:`jobs`, :attr:`export_jobs`, :attr:`uploads`, :attr:`permissions`,
    :attr:`serve_endpoints` and :attr:`tenants`.
    Services query rows through these, never with a session of their own.
    """

    def __init__(self, settings: Settings, store: BlobStore, factory) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings
        self.store = store
        self._factory = factory

    @classmethod
    def open(cls, settings: Settings | None = None) -> Registry:
        settings = settings or get_settings()
        home = settings.resolved_home
        home.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.resolved_database_url)
        migrate(engine, lock_dir=home)
        store = open_store(settings.resolved_store_url, settings.s3_endpoint_url)
        registry = cls(settings, store, session_factory(engine))
        housekeeping.backfill_trees(registry)  # trees written before they were recorded
        registry.tenants.ensure(settings.default_tenant, "Local user")
        return registry

    @cached_property
    def jobs(self) -> JobRows:
        """Fine-tuning jobs, their events and checkpoints."""
        return JobRows(self)

    @cached_property
    def export_jobs(self) -> ExportJobRows:
        """Exports requested and queued for a quantize worker."""
        return ExportJobRows(self)

    @cached_property
    def evals(self) -> EvalRows:
        """Evals (OpenAI's Evals API), their runs queued for an eval worker, and the runs'
        graded items."""
        return EvalRows(self)

    @cached_property
    def batches(self) -> BatchRows:
        """Batches (OpenAI's Batch API) queued for a batch runner, and their answered lines."""
        return BatchRows(self)

    @cached_property
    def uploads(self) -> UploadRows:
        """Files being uploaded in parts."""
        return UploadRows(self)

    @cached_property
    def permissions(self) -> PermissionRows:
        """Adapters shared with other tenants."""
        return PermissionRows(self)

    @cached_property
    def serve_endpoints(self) -> ServeEndpointRows:
        """Running ``quanta serve`` processes: which base each serves, and where."""
        return ServeEndpointRows(self)

    @cached_property
    def tenants(self) -> TenantRows:
        """Tenants and their API keys."""
        return TenantRows(self)

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self._factory.kw["bind"]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: commits on success, rolls back on error."""
        with transaction(self._factory) as session:
            yield session

    # -- blobs and trees -----------------------------------------------------------------

    def put_blob(self, session: Session, src: BinaryIO | Path, *, limit: int | None = None,
                 expected_sha256: str | None = None) -> tuple[str, int]:
        """Store bytes and record the blob's row in ``session`` (committed with the artifact).

        The row is claimed before the bytes are committed to the store, under the lock
        garbage collection takes exclusively, so a collection running at the same time
        either finishes first (and this write brings the blob back) or waits.
        """
        if isinstance(src, Path):
            with open(src, "rb") as fh:
                staged = self.store.stage(fh, expected_sha256, limit)
        else:
            staged = self.store.stage(src, expected_sha256, limit)
        with staged:
            lock_blobs(session, exclusive=False)
            _claim_blob(session, staged.sha256, staged.bytes)
        return staged.sha256, staged.bytes

    def put_tree(self, session: Session, directory: Path) -> StoredTree:
        """Store every file under ``directory`` and a manifest naming them; the manifest is
        recorded as a tree, with one member row per file."""
        files: dict[str, dict[str, Any]] = {}
        total = 0
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            rel = path.relative_to(directory).as_posix()
            sha, size = self.put_blob(session, path)
            files[rel] = {"sha256": sha, "bytes": size}
            total += size
        if not files:
            raise ValueError(f"{directory} holds no files")
        manifest = json.dumps({"kind": MANIFEST_KIND, "files": files}, sort_keys=True).encode()
        sha, _ = self.put_blob(session, io.BytesIO(manifest))
        record_tree(session, sha, files)
        return StoredTree(sha256=sha, bytes=total, files=files)

    def read_manifest(self, sha256: str) -> dict[str, dict[str, Any]]:
        """The files of the tree ``sha256`` (path -> sha256, bytes), from its verified
        manifest; NotFoundError when the registry did not write ``sha256`` as a tree."""
        if not self.is_tree(sha256):
            raise NotFoundError(f"blob {sha256[:12]} is not a tree")
        return self._manifest_files(sha256)

    def open_tree_file(self, tree: str, path: str) -> BinaryIO:
        """One file of the stored tree ``tree``, read straight from the store (no copy of
        the tree is made: for a header, not for the whole file)."""
        entry = self.read_manifest(tree).get(path)
        if entry is None:
            raise NotFoundError(f"{path} is not in tree {tree[:12]}")
        return self.store.open(entry["sha256"])

    def is_tree(self, sha256: str) -> bool:
        with self.session() as s:
            blob = s.get(t.Blob, sha256)
            return blob is not None and blob.is_tree

    def _manifest_files(self, sha256: str) -> dict[str, dict[str, Any]]:
        with self.store.open(sha256) as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if hashlib.sha256(raw).hexdigest() != sha256:
            raise CorruptBlobError(sha256)
        manifest = json.loads(raw)
        return manifest["files"]

    def materialize(self, sha256: str) -> Path:
        """A local directory holding the tree ``sha256``, every file verified.

        The result lives under ``QUANTA_HOME/cache/<sha256>`` and is reused: a copy is
        trusted only while its files' sizes and modification times are those recorded
        when it was last hashed (``cache.VerifiedCopies``); any change and it is hashed
        again, and rebuilt from the store if it no longer matches. A new copy appears
        atomically (built under a temporary name, then renamed).
        """
        if not is_sha256(sha256):  # never let a name reach the filesystem as a path
            raise NotFoundError(f"not a sha256: {sha256!r}")
        files = self.read_manifest(sha256)
        dest = self.settings.cache_dir / sha256
        copies = VerifiedCopies(self.settings.cache_dir)
        if dest.is_dir():
            verdict = copies.trusted(dest, files) or copies.rehash(dest, files)
            if verdict:
                return dest
            if verdict is False:
                shutil.rmtree(dest, ignore_errors=True)  # corrupt copy: fetch it again
            # None: it changed while we hashed it (another process replacing it): build
            # our own and leave theirs alone.
        # A private temporary directory per call: two threads (or processes) materialising
        # the same tree must not delete each other's half-built copy.
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{owner_tag()}{sha256}.",
                                    suffix=".tmp"))
        try:
            for rel, info in files.items():
                target = (tmp / rel).resolve()
                if not target.is_relative_to(tmp.resolve()):
                    raise CorruptBlobError(sha256, f"manifest path escapes the tree: {rel!r}")
                self.store.fetch(info["sha256"], target)
            copies.record(tmp, files, as_name=sha256)
            try:
                os.replace(tmp, dest)
            except OSError:
                if not dest.is_dir():  # someone else won the race: fine; otherwise re-raise
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def blob_path(self, sha256: str, suffix: str = "") -> Path:
        """A verified local copy of a single-file blob (under the cache)."""
        if not is_sha256(sha256):
            raise NotFoundError(f"not a sha256: {sha256!r}")
        if isinstance(self.store, LocalBlobStore):
            # Verify in place before handing out the path: a corrupt blob is never served.
            if self.store.hash_of(sha256) != sha256:
                raise CorruptBlobError(sha256)
            return self.store.path(sha256)
        dest = self.settings.cache_dir / CACHED_BLOBS / f"{sha256}{suffix}"
        if dest.exists() and sha256_file(dest) == sha256:
            return dest
        self.store.fetch(sha256, dest)
        return dest

    @contextmanager
    def staging(self, prefix: str) -> Iterator[Path]:
        """A scratch directory under ``QUANTA_HOME/tmp`` for building an artifact, removed
        afterwards; one a killed process leaves is swept by ``verify`` and ``gc``."""
        root = self.settings.resolved_home / STAGING_DIR
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{owner_tag()}{prefix}-", dir=root))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    # -- files ---------------------------------------------------------------------------

    def add_file(self, tenant_id: str, filename: str, purpose: FilePurpose,
                 src: BinaryIO | Path, *, format: str | None = None,
                 records: int | None = None, limit: int | None = None) -> FileRecord:
        """Store a file; ``limit`` defaults to one request's (``max_upload_bytes``)."""
        with self.session() as s:
            sha, size = self.put_blob(s, src, limit=limit or self.settings.max_upload_bytes)
            row = t.File(id=new_id("file"), tenant_id=tenant_id, filename=filename,
                         purpose=purpose, sha256=sha, bytes=size, format=format, records=records)
            s.add(row)
            s.flush()
            return FileRecord.of(row)

    def get_file(self, tenant_id: str, file_id: str) -> FileRecord:
        return FileRecord.of(self._owned(t.File, file_id, tenant_id, ArtifactKind.FILE))

    def list_files(self, tenant_id: str) -> list[FileRecord]:
        with self.session() as s:
            return FileRecord.all(s.scalars(select(t.File).where(t.File.tenant_id == tenant_id)
                                            .order_by(t.File.created_at.desc())))

    # -- base models ---------------------------------------------------------------------

    def add_base_model(self, model_id: str, directory: Path, *, source: str,
                       architecture: str | None = None, info: dict[str, Any] | None = None,
                       tenant_id: str | None = None) -> BaseModelRecord:
        with self.session() as s:
            if s.get(t.BaseModelRow, model_id) is not None:
                raise ConflictError(f"base model {model_id!r} already exists")
            tree = self.put_tree(s, directory)
            row = t.BaseModelRow(id=model_id, tenant_id=tenant_id, sha256=tree.sha256,
                                 bytes=tree.bytes, source=source, architecture=architecture,
                                 info=info or {})
            s.add(row)
            s.flush()
            return BaseModelRecord.of(row)

    def get_base_model(self, model_id: str, tenant_id: str | None = None) -> BaseModelRecord:
        with self.session() as s:
            row = s.get(t.BaseModelRow, model_id)
            if row is None or (row.tenant_id is not None and row.tenant_id != tenant_id):
                raise NotFoundError(f"The model '{model_id}' does not exist")
            return BaseModelRecord.of(row)

    def list_base_models(self, tenant_id: str | None = None) -> list[BaseModelRecord]:
        with self.session() as s:
            query = select(t.BaseModelRow).where(
                (t.BaseModelRow.tenant_id.is_(None)) | (t.BaseModelRow.tenant_id == tenant_id)
            )
            return BaseModelRecord.all(s.scalars(query.order_by(t.BaseModelRow.id)))

    # -- adapters ------------------------------------------------------------------------

    def add_adapter(self, tenant_id: str, base_model_id: str, directory: Path, *,
                    suffix: str | None, job_id: str | None = None,
                    training_file_id: str | None = None,
                    config: dict[str, Any] | None = None, eval: dict[str, Any] | None = None,
                    alias: str | None = None, adapter_id: str | None = None,
                    name: str | None = None) -> AdapterRecord:
        """Register a peft adapter directory, named ``ft:<base>:<tenant>:<suffix>:<id>``
        (or ``name``: a job's checkpoint models)."""
        adapter_id = adapter_id or new_id("ft")
        name = name or adapter_name(base_model_id, tenant_id, suffix, adapter_id)
        with self.session() as s:
            if s.get(t.BaseModelRow, base_model_id) is None:
                raise NotFoundError(f"The model '{base_model_id}' does not exist")
            tree = self.put_tree(s, directory)
            row = t.Adapter(id=adapter_id, name=name, alias=alias, tenant_id=tenant_id,
                            base_model_id=base_model_id, job_id=job_id,
                            training_file_id=training_file_id, sha256=tree.sha256,
                            bytes=tree.bytes, config=config or {}, eval=eval or {})
            s.add(row)
            s.flush()
            return AdapterRecord.of(row)

    def resolve_adapter(self, tenant_id: str, name: str) -> AdapterRecord:
        """Find an adapter the tenant owns by id, ``ft:`` name or alias; else NotFoundError."""
        with self.session() as s:
            row = s.scalar(select(t.Adapter).where(
                t.Adapter.tenant_id == tenant_id,
                (t.Adapter.id == name) | (t.Adapter.name == name) | (t.Adapter.alias == name),
            ))
            if row is None:
                raise NotFoundError(f"The model '{name}' does not exist")
            return AdapterRecord.of(row)

    def usable_adapter(self, tenant_id: str, name: str) -> AdapterRecord:
        """An adapter the tenant may use: its own (by id, ``ft:`` name or alias), or one its
        owner shared with it (by id or ``ft:`` name); else NotFoundError. Serving and
        fine-tuning from an adapter go through here; anything that changes or reads out
        its files goes through :meth:`resolve_adapter` (the owner only)."""
        try:
            row: AdapterRecord | None = self.resolve_adapter(tenant_id, name)
        except NotFoundError:
            with self.session() as s:
                row = AdapterRecord.maybe(s.scalar(select(t.Adapter).join(
                    t.AdapterPermission, t.AdapterPermission.adapter_id == t.Adapter.id).where(
                    t.AdapterPermission.tenant_id == tenant_id,
                    (t.Adapter.id == name) | (t.Adapter.name == name))))
        if row is None or not self._origin_still_shared(row, tenant_id):
            raise NotFoundError(f"The model '{name}' does not exist")
        return row

    def _origin_still_shared(self, row: AdapterRecord, tenant_id: str) -> bool:
        """An adapter the tenant trained from a model shared with it stays usable only
        while that model is shared with it: a revoke reaches what was built on it."""
        origin = (row.config or {}).get("derived_from")
        if not isinstance(origin, dict) or origin.get("owner") == tenant_id:
            return True
        with self.session() as s:
            return s.scalar(select(t.AdapterPermission.id).where(
                t.AdapterPermission.adapter_id == origin.get("adapter"),
                t.AdapterPermission.tenant_id == tenant_id)) is not None

    def find_adapter(self, name: str) -> AdapterRecord | None:
        """An adapter by its globally unique ``ft:`` name or id, whoever owns it.

        Only for callers behind a tenant check (the serve resolver: the middleware has
        already resolved the tenant's name with :meth:`resolve_adapter`); aliases are
        per tenant, so they are not looked up here.
        """
        with self.session() as s:
            return AdapterRecord.maybe(s.scalar(select(t.Adapter).where(
                (t.Adapter.name == name) | (t.Adapter.id == name))))

    def set_pinned(self, tenant_id: str, name: str, pinned: bool) -> AdapterRecord:
        """Pin (or unpin) one of the tenant's adapters in its base's serving engines; the
        owner only (NotFoundError otherwise). Servers apply it within their sync interval."""
        limit = self.settings.max_pins_per_tenant
        with self.session() as s:
            row = s.get(t.Adapter, self.resolve_adapter(tenant_id, name).id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"The model '{name}' does not exist")
            if pinned and not row.pinned and limit <= s.scalar(
                    select(func.count()).select_from(t.Adapter).where(
                        t.Adapter.tenant_id == tenant_id, t.Adapter.pinned.is_(True),
                        t.Adapter.base_model_id == row.base_model_id)):
                raise ConflictError(f"{tenant_id} already has {limit} pinned adapters of "
                                    f"{row.base_model_id} (QUANTA_MAX_PINS_PER_TENANT): "
                                    "unpin one first")
            row.pinned = pinned
            s.flush()
            return AdapterRecord.of(row)

    def pinned_adapter_names(self, base_model_id: str) -> set[str]:
        """The ``ft:`` names of every tenant's pinned adapters of one base model."""
        with self.session() as s:
            return set(s.scalars(select(t.Adapter.name).where(
                t.Adapter.base_model_id == base_model_id, t.Adapter.pinned.is_(True))))

    def adapter_tenant(self, name: str) -> str | None:
        """The owner of an adapter by ``ft:`` name or id (None: no such adapter)."""
        row = self.find_adapter(name)
        return row.tenant_id if row is not None else None

    def existing_adapter_names(self, names: Iterable[str]) -> set[str]:
        """Which of these ``ft:`` names still exist (one query)."""
        names = list(names)
        if not names:
            return set()
        with self.session() as s:
            return set(s.scalars(select(t.Adapter.name).where(t.Adapter.name.in_(names))))

    def adapter_uses_tree(self, sha256: str) -> bool:
        """Does any adapter's content have this manifest (adapters may share one)?"""
        with self.session() as s:
            return s.scalar(select(t.Adapter.id).where(t.Adapter.sha256 == sha256)) is not None

    def list_adapters(self, tenant_id: str, *, checkpoints: bool = False
                      ) -> list[AdapterRecord]:
        """One tenant's adapters, oldest first; a job's checkpoint models only when asked."""
        rows = self._adapters(t.Adapter.tenant_id == tenant_id)
        return rows if checkpoints else [r for r in rows if "checkpoint" not in r.config]

    def adapters_of_base(self, base_model_id: str) -> list[AdapterRecord]:
        """Every tenant's adapters of one base model, for engines that load them all at
        start (llama.cpp); tenant checks stay in front of the engine."""
        return self._adapters(t.Adapter.base_model_id == base_model_id)

    def _adapters(self, where: Any) -> list[AdapterRecord]:
        with self.session() as s:
            return AdapterRecord.all(s.scalars(select(t.Adapter).where(where)
                                               .order_by(t.Adapter.created_at)))

    # -- exports -------------------------------------------------------------------------

    def add_export(self, *, base_model_id: str, format: ExportFormat, path: Path,
                   adapter_id: str | None = None, tenant_id: str | None = None,
                   metrics: dict[str, Any] | None = None) -> ExportRecord:
        """Register an export: a single file (GGUF) or a directory (merged, GPTQ)."""
        with self.session() as s:
            if path.is_dir():
                stored = self.put_tree(s, path)
                sha, size = stored.sha256, stored.bytes
            else:
                sha, size = self.put_blob(s, path)
            existing = s.scalar(select(t.Export).where(
                t.Export.adapter_id.is_(None) if adapter_id is None
                else t.Export.adapter_id == adapter_id,
                t.Export.base_model_id == base_model_id, t.Export.format == format))
            if existing is not None:
                s.delete(existing)
                s.flush()
            row = t.Export(id=new_id("export"), tenant_id=tenant_id, adapter_id=adapter_id,
                           base_model_id=base_model_id, format=format, sha256=sha, bytes=size,
                           metrics=metrics or {})
            s.add(row)
            s.flush()
            return ExportRecord.of(row)

    def find_export(self, *, base_model_id: str, format: ExportFormat,
                    adapter_id: str | None = None) -> ExportRecord | None:
        with self.session() as s:
            return ExportRecord.maybe(s.scalar(select(t.Export).where(
                t.Export.adapter_id.is_(None) if adapter_id is None
                else t.Export.adapter_id == adapter_id,
                t.Export.base_model_id == base_model_id, t.Export.format == format)))

    def export_name(self, row: ExportRecord) -> str:
        """``<adapter name or base id>@<format>``: how users address an export."""
        if row.adapter_id is None:
            return f"{row.base_model_id}@{row.format}"
        with self.session() as s:
            adapter = s.get(t.Adapter, row.adapter_id)
            return f"{adapter.name if adapter else row.adapter_id}@{row.format}"

    def list_exports(self, tenant_id: str | None = None) -> list[ExportRecord]:
        with self.session() as s:
            query = select(t.Export)
            if tenant_id is not None:
                query = query.where(
                    (t.Export.tenant_id == tenant_id) | t.Export.tenant_id.is_(None))
            return ExportRecord.all(s.scalars(query.order_by(t.Export.created_at)))

    # -- generic listing, deletion, verification -----------------------------------------

    def list_rows(self, kind: ArtifactKind, tenant_id: str | None = None) -> list[Any]:
        """Every record of one kind (one tenant's, where the kind has tenants)."""
        table = _table(kind)
        with self.session() as s:
            query = select(table)
            if tenant_id is not None and hasattr(table, "tenant_id"):
                query = query.where(table.tenant_id == tenant_id)  # type: ignore[attr-defined]
            return ARTIFACT_RECORDS[ArtifactKind(kind)].all(s.scalars(query))

    def get_row(self, kind: ArtifactKind, row_id: str) -> Any:
        """One record of one kind, whoever owns it (callers check ownership)."""
        with self.session() as s:
            row = s.get(_table(kind), row_id)
            if row is None:
                raise NotFoundError(f"{kind} {row_id!r} does not exist")
            return ARTIFACT_RECORDS[ArtifactKind(kind)].of(row)

    def delete(self, kind: ArtifactKind, row_id: str, tenant_id: str | None = None) -> None:
        """Delete a row (and what depends on it), then collect blobs nothing references."""
        table = _table(kind)
        with self.session() as s:
            row = s.get(table, row_id)
            owner = getattr(row, "tenant_id", None)
            if row is None or (tenant_id is not None and owner not in (tenant_id, None)):
                raise NotFoundError(f"{kind} {row_id!r} does not exist")
            if kind == ArtifactKind.BASE_MODEL:
                used = s.scalar(select(t.Adapter.id).where(t.Adapter.base_model_id == row_id))
                if used:
                    raise ConflictError(f"base model {row_id!r} has adapters; delete them first")
            if kind == ArtifactKind.ADAPTER:
                for export in s.scalars(select(t.Export).where(t.Export.adapter_id == row_id)):
                    s.delete(export)
                # The exports first: no ORM relationship orders these deletes, and the
                # foreign keys are enforced (grants go with the adapter: ON DELETE CASCADE).
                s.flush()
            s.delete(row)
        self.collect_released(f"{kind} {row_id}")

    def collect_released(self, what: str) -> None:
        """Collect the blobs rows just deleted (``what``) may have released: no scan of the
        store. The delete has committed; this is best effort (busy now: the next one does
        it)."""
        try:
            housekeeping.collect_garbage(self, sweep=False, wait=False)
        except OperationalError as exc:
            log.warning("garbage collection after deleting %s deferred: %s", what, exc)

    def collect_garbage(self, *, sweep: bool = True) -> int:
        """Delete blobs no artifact references (rows and bytes); with ``sweep`` also the
        store's orphans, the leftovers of killed writers and the parts of expired uploads.
        Returns how many blobs went."""
        if sweep:
            self.uploads.expire(datetime.now(UTC))
        return housekeeping.collect_garbage(self, sweep=sweep).blobs_removed

    def sweep_uploads(self) -> Path:
        """The directory uploads stream into, first swept of a killed writer's leftovers
        (what the tune API does at start); see ``housekeeping``'s grace rules."""
        uploads = self.settings.resolved_home / UPLOADS_DIR
        sweep_abandoned(uploads, self.settings.sweep_grace)
        return uploads

    def sweep_staging(self) -> int:
        """Remove what dead writers on this machine left in ``QUANTA_HOME`` (staging
        directories, partial uploads, half-built cache copies; what a worker does at
        start, after a kill); returns how many went."""
        return housekeeping.sweep_staging(self)

    def last_verify(self) -> dict[str, Any] | None:
        """The counts of the latest ``verify`` on this node, or None if none ran here."""
        return housekeeping.last_verify(self)

    def verify(self) -> VerifyReport:
        """Re-hash every blob the registry knows and every cached copy; see
        ``quanta.registry.housekeeping``."""
        return housekeeping.verify(self)

    # -- helpers -------------------------------------------------------------------------

    def _owned(self, table: type[t.Base], row_id: str, tenant_id: str, what: str) -> Any:
        with self.session() as s:
            row = s.get(table, row_id)
            if row is None or row.tenant_id != tenant_id:  # type: ignore[attr-defined]
                raise NotFoundError(f"No such {what}: {row_id}")
            return row


def _claim_blob(session: Session, sha256: str, size: int) -> None:
    """Insert the blob's row, or take the existing one (a write either way: on SQLite it
    takes the database's write lock, so a collection cannot delete the row under us)."""
    session.execute(insert_for(session)(t.Blob).values(sha256=sha256, bytes=size, is_tree=False,
                                          created_at=t.utcnow())
                    .on_conflict_do_update(index_elements=["sha256"],
                                           set_={"bytes": size}))


def _table(kind: str) -> type[t.Base]:
    try:
        return ARTIFACT_TABLES[ArtifactKind(kind)]
    except ValueError as exc:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(ARTIFACT_TABLES)}") from exc

"""The upload tables' row API: files sent in parts (OpenAI's Uploads API).

A pending upload collects parts, each stored as a blob at once (so a dropped connection
loses one part, never the ones before it); completing writes the parts, in the order
the client names, into one ``file`` and drops the parts; cancelling or expiring drops
them too. Status changes are compare-and-set on ``status == pending``, so two requests
racing to complete (or to complete and cancel) cannot both win. What a request may do is
the tune API's (``tune/api/uploads.py``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from quanta.registry import tables as t
from quanta.registry.errors import ConflictError, NotFoundError
from quanta.registry.ids import new_id
from quanta.registry.records import UploadPartRecord, UploadRecord
from quanta.types import FilePurpose, UploadStatus

if TYPE_CHECKING:
    from quanta.registry.registry import Registry


class UploadRows:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def create(self, tenant_id: str, filename: str, purpose: FilePurpose, size: int,
               mime_type: str, created_at: datetime, expires_at: datetime) -> UploadRecord:
        with self._registry.session() as s:
            row = t.Upload(id=new_id("upload"), tenant_id=tenant_id, filename=filename,
                           purpose=purpose, bytes=size, mime_type=mime_type,
                           status=UploadStatus.PENDING, created_at=created_at,
                           expires_at=expires_at)
            s.add(row)
            s.flush()
            return UploadRecord.of(row)

    def owned(self, tenant_id: str, upload_id: str) -> UploadRecord:
        """The tenant's upload; another tenant's raises the same NotFoundError as none."""
        with self._registry.session() as s:
            row = s.get(t.Upload, upload_id)
            if row is None or row.tenant_id != tenant_id:
                raise NotFoundError(f"No such Upload object: {upload_id}")
            return UploadRecord.of(row)

    def parts(self, upload_id: str) -> list[UploadPartRecord]:
        with self._registry.session() as s:
            return UploadPartRecord.all(s.scalars(
                select(t.UploadPart).where(t.UploadPart.upload_id == upload_id)
                .order_by(t.UploadPart.created_at)))

    def add_part(self, upload_id: str, path: Path, created_at: datetime) -> UploadPartRecord:
        """Store one part; ConflictError if the upload stopped being pending meanwhile."""
        with self._registry.session() as s:
            sha, size = self._registry.put_blob(s, path)
            row = t.UploadPart(id=new_id("part"), upload_id=upload_id, sha256=sha, bytes=size,
                               created_at=created_at)
            s.add(row)
            s.flush()
            # Compare-and-set in the same transaction: a close that committed first makes
            # this part roll back; one that comes later drops it with the others.
            still = s.execute(update(t.Upload).where(
                t.Upload.id == upload_id, t.Upload.status == UploadStatus.PENDING)
                .values(status=UploadStatus.PENDING))
            if still.rowcount != 1:
                raise ConflictError(f"Upload {upload_id} is no longer pending")
            return UploadPartRecord.of(row)

    @contextmanager
    def assembled(self, parts: Sequence[UploadPartRecord]) -> Iterator[Path]:
        """The parts' bytes, concatenated in this order, in a staging file (under
        ``QUANTA_HOME``: swept by ``gc`` if this process is killed)."""
        with self._registry.staging("upload") as tmp:
            path = tmp / "upload"
            with open(path, "wb") as out:
                for part in parts:
                    with self._registry.store.open(part.sha256) as src:
                        shutil.copyfileobj(src, out)
            yield path

    def close(self, upload_id: str, status: UploadStatus, file_id: str | None = None) -> bool:
        """Move a pending upload to ``status`` and drop its parts; False if it was not
        pending (another request closed it first)."""
        with self._registry.session() as s:
            changed = s.execute(update(t.Upload).where(
                t.Upload.id == upload_id, t.Upload.status == UploadStatus.PENDING)
                .values(status=status, file_id=file_id))
            if changed.rowcount != 1:
                return False
            s.execute(delete(t.UploadPart).where(t.UploadPart.upload_id == upload_id))
        self._registry.collect_released(f"the parts of upload {upload_id}")
        return True

    def expire(self, now: datetime) -> list[str]:
        """Expire every pending upload past its ``expires_at``; returns their ids."""
        with self._registry.session() as s:
            ids = list(s.scalars(select(t.Upload.id).where(
                t.Upload.status == UploadStatus.PENDING, t.Upload.expires_at < now)))
        return [upload_id for upload_id in ids if self.close(upload_id, UploadStatus.EXPIRED)]

"""OpenAI's files resource: a tenant's datasets, eval items and batch requests, validated
when they arrive.

An upload is checked by its purpose's check before anything is stored: a fine-tuning
dataset against the formats ``quanta.data`` reads, an eval's items or a batch's requests
by the checks their modules register here (``@upload_check``), so a job, run or batch
never starts from a file that cannot be read. Another tenant's file answers the same 404
as an id that never existed; a file a job uses cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quanta.data import validate_upload
from quanta.data.text import text_problem
from quanta.registry import FileRecord, Registry
from quanta.registry import NotFoundError as RegistryNotFound
from quanta.types import ArtifactKind, FilePurpose
from tune.api import objects
from tune.api.errors import HTTPBadRequest, HTTPConflict, HTTPNotFound

MAX_FILES_PAGE = 10_000  # OpenAI's range and default for files


@dataclass
class UploadReport:
    """What a purpose's check found in an upload: its format, how many records, and the
    problems (each naming its line), none when it may be stored."""

    format: str | None = None
    records: int = 0
    errors: list[str] = field(default_factory=list)


UploadCheck = Callable[[Path, str], UploadReport]
_UPLOAD_CHECKS: dict[FilePurpose, tuple[UploadCheck, str]] = {}


def upload_check(purpose: FilePurpose, what: str) -> Callable[[UploadCheck], UploadCheck]:
    """Register the check of uploads with ``purpose`` (``what``: the files it accepts, as
    its error message names them)."""
    def register(check: UploadCheck) -> UploadCheck:
        _UPLOAD_CHECKS[purpose] = (check, what)
        return check
    return register


@upload_check(FilePurpose.FINE_TUNE, "fine-tuning")
def _fine_tuning_data(path: Path, filename: str) -> UploadReport:
    report = validate_upload(path, filename)
    return UploadReport(report.format, report.records, list(report.errors))


def safe_filename(name: str) -> str:
    """The uploaded name as metadata only: no directories, dots-only or control characters."""
    name = "".join(c for c in name.replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable())
    name = name.strip()[:255]
    return name if name.strip(".") else "upload.jsonl"


class FilesService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create_file(self, tenant_id: str, filename: str | None, purpose: str | None,
                    path: Path, limit: int | None = None) -> dict[str, Any]:
        """Validate an uploaded dataset (already on disk) and store it (``limit``: its
        size limit, when it came in parts)."""
        accepted = [str(p) for p in FilePurpose if p.uploadable and p in _UPLOAD_CHECKS]
        if purpose not in accepted:
            raise HTTPBadRequest(f"Invalid purpose {purpose!r}: Quanta accepts "
                                 f"{', '.join(repr(p) for p in accepted)}",
                                 param="purpose", code="invalid_value")
        if not filename:
            raise HTTPBadRequest("Missing file part 'file'", param="file")
        problem = text_problem(filename)
        if problem:
            raise HTTPBadRequest(f"file: the file name {problem}", param="file",
                                 code="invalid_value")
        filename = safe_filename(filename)
        check, what = _UPLOAD_CHECKS[FilePurpose(purpose)]
        report = check(path, filename)
        if report.errors:
            shown = "; ".join(report.errors[:5])
            more = f" (and {len(report.errors) - 5} more)" if len(report.errors) > 5 else ""
            raise HTTPBadRequest(f"Invalid file format for {what}: {shown}{more}",
                                 param="file", code="invalid_file_format")
        row = self.registry.add_file(tenant_id, filename, FilePurpose(purpose), path,
                                     format=report.format, records=report.records,
                                     limit=limit)
        return objects.file_object(row)

    def _file(self, tenant_id: str, file_id: str) -> FileRecord:
        try:
            return self.registry.get_file(tenant_id, file_id)
        except RegistryNotFound:
            raise HTTPNotFound(f"No such File object: {file_id}", param="id") from None

    def get_file(self, tenant_id: str, file_id: str) -> dict[str, Any]:
        return objects.file_object(self._file(tenant_id, file_id))

    def file_path(self, tenant_id: str, file_id: str) -> tuple[FileRecord, Path]:
        row = self._file(tenant_id, file_id)
        return row, self.registry.blob_path(row.sha256)

    def list_files(self, tenant_id: str, purpose: str | None = None, after: str | None = None,
                   limit: int | None = None, order: str = "desc") -> dict[str, Any]:
        """The tenant's files, newest first (``order="asc"``: oldest first)."""
        if order not in ("asc", "desc"):
            raise HTTPBadRequest("order must be 'asc' or 'desc'", param="order",
                                 code="invalid_value")
        rows = [r for r in self.registry.list_files(tenant_id)
                if purpose is None or r.purpose == purpose]
        if order == "asc":
            rows.reverse()
        rows, more = objects.page_after(rows, after, objects.page_limit(limit, MAX_FILES_PAGE,
                                                                        MAX_FILES_PAGE))
        listing = objects.page([objects.file_object(r) for r in rows], more)
        # OpenAI's file list types first_id and last_id as strings, required: "" when empty.
        return {**listing, "first_id": listing.get("first_id", ""),
                "last_id": listing.get("last_id", "")}

    def delete_file(self, tenant_id: str, file_id: str) -> dict[str, Any]:
        self._file(tenant_id, file_id)
        used = self.registry.jobs.using_file(file_id)
        if used:
            raise HTTPConflict(f"File {file_id} is used by fine-tuning job {used}", param="id",
                               code="file_in_use")
        batch = self.registry.batches.using_file(file_id)
        if batch:
            raise HTTPConflict(f"File {file_id} is the input of batch {batch}, which is not "
                               "finished", param="id", code="file_in_use")
        self.registry.delete(ArtifactKind.FILE, file_id, tenant_id)
        return {"id": file_id, "object": "file", "deleted": True}

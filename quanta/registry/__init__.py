"""The artifact registry: rows in SQLite/PostgreSQL, bytes in a content-addressed store.

This package's names are its public API; services import nothing from its modules.
What it hands out are frozen records (``records.py``), never ORM rows.
"""

from quanta.registry.batches import BatchPulse
from quanta.registry.errors import ConflictError, CorruptBlobError, NotFoundError, RegistryError
from quanta.registry.evals import EvalPulse
from quanta.registry.export_jobs import ExportPulse
from quanta.registry.ids import check_name
from quanta.registry.jobs import JobTransaction
from quanta.registry.records import (
    AdapterRecord,
    ApiKeyRecord,
    BaseModelRecord,
    BatchRecord,
    BatchResultRecord,
    CheckpointRecord,
    EvalOutputItemRecord,
    EvalRecord,
    EvalRunRecord,
    EventRecord,
    ExportJobRecord,
    ExportRecord,
    FileRecord,
    GrantRecord,
    JobRecord,
    Record,
    ServeEndpointRecord,
    TenantRecord,
    UploadPartRecord,
    UploadRecord,
)
from quanta.registry.registry import Registry, StoredTree, VerifyReport, adapter_name
from quanta.registry.store import is_disk_full, owner_tag, sha256_file
from quanta.registry.tables import utcnow

__all__ = [
    "AdapterRecord",
    "ApiKeyRecord",
    "BaseModelRecord",
    "BatchPulse",
    "BatchRecord",
    "BatchResultRecord",
    "CheckpointRecord",
    "ConflictError",
    "CorruptBlobError",
    "EvalOutputItemRecord",
    "EvalPulse",
    "EvalRecord",
    "EvalRunRecord",
    "EventRecord",
    "ExportJobRecord",
    "ExportPulse",
    "ExportRecord",
    "FileRecord",
    "GrantRecord",
    "JobRecord",
    "JobTransaction",
    "NotFoundError",
    "Record",
    "Registry",
    "RegistryError",
    "ServeEndpointRecord",
    "StoredTree",
    "TenantRecord",
    "UploadPartRecord",
    "UploadRecord",
    "VerifyReport",
    "adapter_name",
    "check_name",
    "is_disk_full",
    "owner_tag",
    "sha256_file",
    "utcnow",
]

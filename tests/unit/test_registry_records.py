"""The registry hands out frozen records that mirror its tables, never ORM rows."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from quanta.config import Settings
from quanta.registry import Registry, records
from quanta.registry import tables as t
from quanta.registry.registry import ARTIFACT_RECORDS, ARTIFACT_TABLES
from quanta.types import JobStatus

RECORD_OF_TABLE = {
    t.Tenant: records.TenantRecord,
    t.ApiKey: records.ApiKeyRecord,
    t.File: records.FileRecord,
    t.BaseModelRow: records.BaseModelRecord,
    t.Job: records.JobRecord,
    t.JobEvent: records.EventRecord,
    t.Checkpoint: records.CheckpointRecord,
    t.Upload: records.UploadRecord,
    t.UploadPart: records.UploadPartRecord,
    t.Adapter: records.AdapterRecord,
    t.AdapterPermission: records.GrantRecord,
    t.Export: records.ExportRecord,
    t.ExportJob: records.ExportJobRecord,
    t.ServeEndpoint: records.ServeEndpointRecord,
    t.Eval: records.EvalRecord,
    t.EvalRun: records.EvalRunRecord,
    t.EvalOutputItem: records.EvalOutputItemRecord,
    t.Batch: records.BatchRecord,
    t.BatchResult: records.BatchResultRecord,
}


@pytest.mark.parametrize("table", list(RECORD_OF_TABLE), ids=lambda table: table.__name__)
def test_record_mirrors_its_table(table: type[t.Base]) -> None:
    """A column added to a table without its record (or the reverse) fails here."""
    columns = {c.key for c in table.__mapper__.column_attrs}
    assert {f.name for f in dataclasses.fields(RECORD_OF_TABLE[table])} == columns


def test_every_artifact_kind_has_its_record() -> None:
    assert ARTIFACT_RECORDS.keys() == ARTIFACT_TABLES.keys()
    for kind, table in ARTIFACT_TABLES.items():
        assert ARTIFACT_RECORDS[kind] is RECORD_OF_TABLE[table]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.open(Settings(home=tmp_path / "home"))


def test_services_get_frozen_records(registry: Registry) -> None:
    file = registry.add_file("local", "t.jsonl", "fine-tune", io.BytesIO(b"{}\n"))
    assert type(file) is records.FileRecord
    stored = registry.get_file("local", file.id)
    assert (stored.id, stored.sha256, stored.bytes) == (file.id, file.sha256, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        file.filename = "other.jsonl"  # type: ignore[misc]
    assert registry.get_file("local", file.id).filename == "t.jsonl"


def test_job_records_read_their_transaction(registry: Registry, tmp_path: Path) -> None:
    """``JobTransaction.get`` sees the transaction's own writes; ``set`` is how a holder
    of the job changes it (a record cannot be written back)."""
    tree = tmp_path / "base"
    tree.mkdir()
    (tree / "config.json").write_text("{}")
    registry.add_base_model("tiny", tree, source="test")
    file = registry.add_file("local", "t.jsonl", "fine-tune", io.BytesIO(b"{}\n"))
    job = registry.jobs.create(["created"], tenant_id="local", model="tiny",
                               training_file_id=file.id, status=JobStatus.QUEUED)
    assert type(job) is records.JobRecord and job.id.startswith("ftjob-")
    with registry.jobs.transaction() as tx:
        assert tx.set_if(job.id, {"status": JobStatus.QUEUED}, status=JobStatus.RUNNING)
        assert tx.get(job.id).status == JobStatus.RUNNING
        tx.set(job.id, worker_id="w1")
        assert tx.get(job.id).worker_id == "w1"
    stored = registry.jobs.get(job.id)
    assert (stored.status, stored.worker_id) == (JobStatus.RUNNING, "w1")
    assert [e.message for e in registry.jobs.events(job.id)] == ["created"]

"""Registry behaviour on the embedded default (SQLite + local blobs)."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from quanta.registry import ConflictError, CorruptBlobError, NotFoundError, Registry
from quanta.registry import tables as t
from quanta.registry.ids import check_name
from quanta.registry.store import LocalBlobStore
from tests.support.fixtures import dead_pid


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def count(registry: Registry, table: type[t.Base]) -> int:
    with registry.session() as s:
        return s.scalar(select(func.count()).select_from(table)) or 0


def flip_bit(store: LocalBlobStore, sha: str) -> None:
    path = store.path(sha)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_file_is_content_addressed_and_tenant_scoped(registry: Registry) -> None:
    registry.tenants.ensure("acme")
    row = registry.add_file("local", "train.jsonl", "fine-tune", io.BytesIO(b'{"a": 1}\n'))
    assert row.id.startswith("file-")
    assert row.bytes == 9
    assert registry.store.hash_of(row.sha256) == row.sha256
    assert registry.get_file("local", row.id).filename == "train.jsonl"
    with pytest.raises(NotFoundError):
        registry.get_file("acme", row.id)  # another tenant's file looks like no file
    assert [f.id for f in registry.list_files("local")] == [row.id]
    assert registry.list_files("acme") == []


def test_identical_content_is_stored_once(registry: Registry) -> None:
    a = registry.add_file("local", "a.jsonl", "fine-tune", io.BytesIO(b"same"))
    b = registry.add_file("local", "b.jsonl", "fine-tune", io.BytesIO(b"same"))
    assert a.sha256 == b.sha256 and a.id != b.id
    assert count(registry, t.Blob) == 1


def test_tree_round_trip_and_materialize(registry: Registry, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "model", {"config.json": b"{}", "sub/w.bin": b"\x00" * 1000})
    row = registry.add_base_model("tiny", src, source="test")
    assert row.bytes == 1002
    out = registry.materialize(row.sha256)
    assert (out / "config.json").read_bytes() == b"{}"
    assert (out / "sub" / "w.bin").read_bytes() == b"\x00" * 1000
    assert registry.materialize(row.sha256) == out  # cached
    with pytest.raises(ConflictError):
        registry.add_base_model("tiny", src, source="test")


def test_corrupt_blob_is_never_materialized(registry: Registry, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "m", {"config.json": b"{}", "w.bin": b"weights" * 100})
    row = registry.add_base_model("tiny", src, source="test")
    weights_sha = registry.read_manifest(row.sha256)["w.bin"]["sha256"]
    assert isinstance(registry.store, LocalBlobStore)
    flip_bit(registry.store, weights_sha)

    report = registry.verify()
    assert not report.ok
    assert report.corrupt == [weights_sha]
    with pytest.raises(CorruptBlobError):
        registry.materialize(row.sha256)
    assert not (registry.settings.cache_dir / row.sha256).exists()
    with pytest.raises(CorruptBlobError):
        registry.blob_path(weights_sha)


def test_missing_blob_is_reported(registry: Registry) -> None:
    row = registry.add_file("local", "a.jsonl", "fine-tune", io.BytesIO(b"x"))
    registry.store.delete(row.sha256)
    report = registry.verify()
    assert report.missing == [row.sha256] and not report.ok


def test_delete_collects_unreferenced_blobs(registry: Registry, tmp_path: Path) -> None:
    keep = registry.add_file("local", "keep.jsonl", "fine-tune", io.BytesIO(b"keep"))
    gone = registry.add_file("local", "gone.jsonl", "fine-tune", io.BytesIO(b"gone"))
    registry.delete("file", gone.id, tenant_id="local")
    assert not registry.store.exists(gone.sha256)
    assert registry.store.exists(keep.sha256)
    assert registry.verify().ok
    with pytest.raises(NotFoundError):
        registry.delete("file", keep.id, tenant_id="someone-else")


def test_adapter_lineage_and_resolution(registry: Registry, tmp_path: Path) -> None:
    base = registry.add_base_model("tiny", make_tree(tmp_path / "b", {"config.json": b"{}"}),
                                   source="test")
    registry.tenants.ensure("acme")
    train = registry.add_file("acme", "t.jsonl", "fine-tune", io.BytesIO(b"t"))
    adapter = registry.add_adapter(
        "acme", base.id, make_tree(tmp_path / "a", {"adapter_config.json": b"{}"}),
        suffix="physics", training_file_id=train.id, alias="phys")
    assert adapter.name.startswith("ft:tiny:acme:physics:")
    for key in (adapter.id, adapter.name, "phys"):
        assert registry.resolve_adapter("acme", key).id == adapter.id
    with pytest.raises(NotFoundError):
        registry.resolve_adapter("local", adapter.name)
    with pytest.raises(NotFoundError):
        registry.add_adapter("acme", "no-such-base", tmp_path / "a", suffix="x")
    with pytest.raises(ConflictError):
        registry.delete("base_model", base.id)  # adapters still use it


def test_export_replaces_previous_of_same_format(registry: Registry, tmp_path: Path) -> None:
    base = registry.add_base_model("tiny", make_tree(tmp_path / "b", {"config.json": b"{}"}),
                                   source="test")
    f1 = tmp_path / "m1.gguf"
    f1.write_bytes(b"GGUF1")
    f2 = tmp_path / "m2.gguf"
    f2.write_bytes(b"GGUF2")
    registry.add_export(base_model_id=base.id, format="gguf-f16", path=f1)
    second = registry.add_export(base_model_id=base.id, format="gguf-f16", path=f2,
                                 metrics={"perplexity": 9.5})
    found = registry.find_export(base_model_id=base.id, format="gguf-f16")
    assert found is not None and found.id == second.id
    assert registry.blob_path(found.sha256).read_bytes() == b"GGUF2"
    assert count(registry, t.Export) == 1


def test_upload_limit_leaves_nothing(registry: Registry) -> None:
    registry.settings.max_upload_bytes = 10
    with pytest.raises(ValueError, match="limit"):
        registry.add_file("local", "big.jsonl", "fine-tune", io.BytesIO(b"x" * 11))
    assert count(registry, t.File) == 0 and count(registry, t.Blob) == 0
    assert list(registry.store.list()) == []
    assert list((registry.store.root / ".tmp").iterdir()) == []  # type: ignore[attr-defined]


def test_expected_hash_mismatch_is_rejected(registry: Registry) -> None:
    with registry.session() as s, pytest.raises(CorruptBlobError):
        registry.put_blob(s, io.BytesIO(b"abc"), expected_sha256="0" * 64)
    assert list(registry.store.list()) == []


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "UPPER", ".hidden", "x" * 65, "a b"])
def test_names_cannot_escape(bad: str) -> None:
    with pytest.raises(ValueError):
        check_name(bad)


def test_store_rejects_non_hash_names(registry: Registry) -> None:
    with pytest.raises(NotFoundError):
        registry.store.open("../../registry.db")


def test_manifest_paths_cannot_escape_the_cache(registry: Registry) -> None:
    import json

    from quanta.registry.layout import record_tree

    evil = {"kind": "quanta.tree/v1", "files": {"../../escape.txt": {"sha256": "0" * 64}}}
    with registry.session() as s:
        sha, _ = registry.put_blob(s, io.BytesIO(json.dumps(evil).encode()))
    # A blob that only looks like a manifest is not a tree: the registry never wrote it as one.
    with pytest.raises(NotFoundError, match="not a tree"):
        registry.materialize(sha)
    # Even a recorded tree (a tampered database) cannot write outside the cache.
    with registry.session() as s:
        s.add(t.Blob(sha256="0" * 64, bytes=0))
        s.flush()
        record_tree(s, sha, evil["files"])
    with pytest.raises(CorruptBlobError, match="escapes"):
        registry.materialize(sha)
    assert not (registry.settings.cache_dir.parent / "escape.txt").exists()


def test_trees_written_before_they_were_recorded_are_backfilled(registry: Registry,
                                                                 tmp_path: Path) -> None:
    """A registry from before revision 0002 knew trees only by content: opening it
    records the trees its base-model, adapter, checkpoint and export rows name."""
    from quanta.config import Settings

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "w.bin").write_bytes(b"w" * 100)
    row = registry.add_base_model("old", model, source="test")
    with registry.session() as s:  # as revision 0001 left it
        s.query(t.TreeMember).delete()
        s.query(t.Blob).update({t.Blob.is_tree: False})
    assert not registry.is_tree(row.sha256)
    reopened = Registry.open(Settings(home=registry.settings.resolved_home))
    assert reopened.is_tree(row.sha256)
    assert set(reopened.read_manifest(row.sha256)) == {"config.json", "w.bin"}
    assert reopened.verify().ok and reopened.collect_garbage() == 0


def test_a_backfill_that_cannot_read_a_manifest_refuses_to_open(
        registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: an unrecorded tree would leave its members to the next GC."""
    from quanta.config import Settings

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    row = registry.add_base_model("old", model, source="test")
    with registry.session() as s:
        s.query(t.TreeMember).delete()
        s.query(t.Blob).update({t.Blob.is_tree: False})

    def unreadable(self: LocalBlobStore, sha256: str) -> Any:
        raise PermissionError(13, "Permission denied", sha256)

    monkeypatch.setattr(LocalBlobStore, "open", unreadable)
    with pytest.raises(RuntimeError, match="revision 0002"):
        Registry.open(Settings(home=registry.settings.resolved_home))
    monkeypatch.undo()
    reopened = Registry.open(Settings(home=registry.settings.resolved_home))
    assert reopened.is_tree(row.sha256) and reopened.collect_garbage() == 0
    assert reopened.verify().ok


def test_sweeps_judge_this_hosts_names_by_their_writer_not_their_age() -> None:
    from quanta.registry.store import is_abandoned, owner_tag

    old = time.time() - 10 * 3600
    host = owner_tag().split(".")[0]
    assert not is_abandoned(f"{owner_tag()}export-x", old, 3600)  # alive, however old
    assert is_abandoned(f"{host}.{dead_pid()}.export-x", time.time(), 3600)
    assert not is_abandoned("otherhost-1.1.export-x", time.time(), 3600)
    assert is_abandoned("otherhost-1.1.export-x", old, 3600)  # can't ask: age decides
    assert is_abandoned("untagged", old, 3600) and not is_abandoned("untagged", time.time(), 3600)


def test_verify_leaves_a_single_file_copy_being_written_alone(registry: Registry) -> None:
    from quanta.registry.store import owner_tag

    blobs = registry.settings.cache_dir / "blobs"
    blobs.mkdir(parents=True)
    writing = blobs / f".{owner_tag()}{'a' * 64}.gguf.xyz"
    writing.write_bytes(b"half a download")
    report = registry.verify()
    assert writing.exists() and report.cache_corrupt == [] and report.ok


def test_sqlite_full_is_a_full_disk() -> None:
    from sqlalchemy.exc import OperationalError

    from quanta.registry.store import is_disk_full

    exc = OperationalError("INSERT ...", {}, Exception("database or disk is full"))
    assert is_disk_full(exc) and not is_disk_full(OperationalError("x", {}, Exception("locked")))


def test_deleting_an_adapter_takes_its_exports_and_grants(registry: Registry,
                                                          tmp_path: Path) -> None:
    from quanta.tenancy import create_tenant
    from tests.support.fixtures import fake_adapter_dir, fake_base_models

    fake_base_models(registry, tmp_path / "models", "base")
    create_tenant(registry, "other")
    adapter = registry.add_adapter("local", "base", fake_adapter_dir(tmp_path / "a"),
                                   suffix="a")
    export = tmp_path / "e.gguf"
    export.write_bytes(b"GGUF export")
    registry.add_export(base_model_id="base", format="gguf-q8_0", path=export,
                        adapter_id=adapter.id, tenant_id="local")
    registry.permissions.grant(adapter.id, ["other"])
    assert registry.usable_adapter("other", adapter.name).id == adapter.id
    registry.delete("adapter", adapter.id, "local")
    assert count(registry, t.Export) == count(registry, t.AdapterPermission) == 0
    with pytest.raises(NotFoundError):
        registry.usable_adapter("other", adapter.name)
    assert registry.verify().ok


def test_latest_job_matches_suffix_and_metadata(registry: Registry, tmp_path: Path) -> None:
    from datetime import timedelta

    from quanta.registry.tables import utcnow
    from quanta.types import JobStatus

    registry.add_base_model("tiny", make_tree(tmp_path / "b", {"config.json": b"{}"}),
                            source="test")
    train = registry.add_file("local", "t.jsonl", "fine-tune", io.BytesIO(b"t"))
    now = utcnow()
    for i, run in enumerate(("old-data", "new-data")):
        registry.jobs.create(id=f"ftjob-{i}", tenant_id="local", model="tiny",
                             training_file_id=train.id, suffix="demo",
                             status=JobStatus.SUCCEEDED, job_metadata={"run": run},
                             created_at=now + timedelta(seconds=i))
    done = (JobStatus.SUCCEEDED,)
    assert registry.jobs.latest("local", done, suffix="demo").id == "ftjob-1"
    assert registry.jobs.latest("local", done, suffix="demo",
                                metadata={"run": "old-data"}).id == "ftjob-0"
    assert registry.jobs.latest("local", done, suffix="demo", metadata={"run": "other"}) is None
    assert registry.jobs.latest("local", (JobStatus.RUNNING,), suffix="demo") is None

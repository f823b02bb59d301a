"""The same registry code on PostgreSQL and on an S3-compatible store."""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path

import boto3
import pytest

from quanta.config import Settings
from quanta.registry import NotFoundError, Registry
from quanta.registry.store import S3BlobStore


def exercise(registry: Registry, tmp_path: Path) -> None:
    """One pass over the registry's main paths; shared by every backend."""
    registry.tenants.ensure("acme")
    f = registry.add_file("acme", "train.jsonl", "fine-tune", io.BytesIO(b'{"x": 1}\n'))
    assert registry.get_file("acme", f.id).sha256 == f.sha256
    with pytest.raises(NotFoundError):
        registry.get_file("local", f.id)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "w.bin").write_bytes(b"\x01" * 5000)
    base = registry.add_base_model("tiny", model, source="test")
    out = registry.materialize(base.sha256)
    assert (out / "w.bin").read_bytes() == b"\x01" * 5000
    adapter = registry.add_adapter("acme", "tiny", model, suffix="s", training_file_id=f.id)
    assert registry.resolve_adapter("acme", adapter.name).id == adapter.id
    assert registry.verify().ok
    registry.delete("adapter", adapter.id, tenant_id="acme")
    registry.delete("file", f.id, tenant_id="acme")
    assert not registry.store.exists(f.sha256)
    assert registry.verify().ok


@pytest.mark.postgres
def test_registry_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    registry = Registry.open(Settings(home=tmp_path / "home", database_url=postgres_url))
    assert registry.engine.dialect.name == "postgresql"
    exercise(registry, tmp_path)


def _open_concurrently(url: str, home: str) -> None:
    Registry.open(Settings(home=Path(home), database_url=url))


@pytest.mark.postgres
def test_concurrent_first_start_migrates_once(postgres_url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_concurrently, args=(postgres_url, str(tmp_path / f"h{i}")))
             for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]


def test_registry_on_s3(s3_endpoint: str, tmp_path: Path) -> None:
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="quanta-test")
    settings = Settings(home=tmp_path / "home", store_url="s3://quanta-test/reg",
                        s3_endpoint_url=s3_endpoint)
    registry = Registry.open(settings)
    assert isinstance(registry.store, S3BlobStore)
    exercise(registry, tmp_path)


def test_s3_corrupt_object_is_detected(s3_endpoint: str, tmp_path: Path) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="quanta-corrupt")
    registry = Registry.open(Settings(home=tmp_path / "home", store_url="s3://quanta-corrupt",
                                      s3_endpoint_url=s3_endpoint))
    f = registry.add_file("local", "a.jsonl", "fine-tune", io.BytesIO(b"original"))
    assert isinstance(registry.store, S3BlobStore)
    client.put_object(Bucket="quanta-corrupt", Key=registry.store.key(f.sha256), Body=b"tampered")
    report = registry.verify()
    assert report.corrupt == [f.sha256]

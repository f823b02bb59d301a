"""Content-addressed blob stores: a local directory (default) or an S3-compatible bucket.

Both stores write in two steps, so the registry can claim a blob's row between them:
:meth:`BlobStore.stage` lands the bytes under a temporary name, hashed while written,
fsynced and checked against the expected sha256; :meth:`StagedBlob.commit` then renames
them (or, on S3, puts them under their final key, which S3 makes visible all at once).
A process killed mid-write leaves at most a temporary file, never a blob under its
hash. Temporary names carry their writer's host and pid (:func:`owner_tag`), so a sweep
removes a dead writer's leftovers at once and never a live writer's.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from quanta.registry.errors import CorruptBlobError, NotFoundError

CHUNK = 256 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashing(src: BinaryIO, dst: BinaryIO, limit: int | None = None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        size += len(chunk)
        if limit is not None and size > limit:
            raise ValueError(f"content exceeds the limit of {limit} bytes")
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest(), size


@functools.cache
def _host() -> str:
    """This host and PID namespace, as one name field (names split on "."): containers
    sharing a hostname (``--network host``) have their own pids."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname().replace('.', '_')}-{namespace}"


def is_sha256(value: str) -> bool:
    """A blob name: 64 lowercase hex digits (never a path)."""
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


SQLITE_FULL_MESSAGE = "database or disk is full"  # SQLITE_FULL, through sqlite3 / SQLAlchemy


def is_disk_full(exc: BaseException) -> bool:
    """A full disk, as an OSError or as libraries that wrap it report it (safetensors:
    "No space left on device (os error 28)"; SQLite: "database or disk is full")."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    text = str(exc)
    return SQLITE_FULL_MESSAGE in text or any(os.strerror(code) in text
                                              for code in DISK_FULL_ERRNOS)


def owner_tag() -> str:
    """``<host>.<pid>.``: prefixes this process's temporary names (see :func:`is_abandoned`)."""
    return f"{_host()}.{os.getpid()}."


def is_abandoned(name: str, mtime: float, grace: float) -> bool:
    """May a sweep remove this temporary file or directory?

    A name tagged by this host (and PID namespace) is decided by its writer alone: yes
    once that process is dead, never while it lives, however long it runs (a directory's
    mtime says nothing about the files being written deeper in it). A writer elsewhere
    cannot be asked, so its names (and untagged ones) go once older than ``grace`` seconds.
    """
    host, _, rest = name.lstrip(".").partition(".")
    pid = rest.partition(".")[0]
    if host != _host() or not pid.isdigit():
        return time.time() - mtime > grace
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def sweep_abandoned(root: Path, grace: float,
                    only: Callable[[str], bool] | None = None) -> int:
    """Remove the files and directories directly under ``root`` that their writers
    abandoned (:func:`is_abandoned`), of those ``only`` accepts; returns how many went.
    Safe beside live writers and beside another sweep of the same directory."""
    if not root.is_dir():
        return 0
    removed = 0
    for path in root.iterdir():
        if only is not None and not only(path.name):
            continue
        try:
            abandoned = is_abandoned(path.name, path.stat().st_mtime, grace)
        except FileNotFoundError:
            continue  # renamed into place, or swept by someone else, meanwhile
        if not abandoned:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


@dataclass
class StagedBlob:
    """Bytes hashed and held under a temporary name; ``commit`` makes them the blob.

    As a context manager: committed when the block succeeds, discarded when it (or the
    commit) raises, so a caller can claim the blob's row in between."""

    sha256: str
    bytes: int
    commit: Callable[[], None]
    discard: Callable[[], None]

    def __enter__(self) -> StagedBlob:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.discard()
            return
        try:
            self.commit()
        except BaseException:
            self.discard()
            raise


class BlobStore(Protocol):
    """What the registry needs from a store. Blobs are immutable and named by sha256."""

    url: str

    def stage(self, src: BinaryIO, expected_sha256: str | None = None,
              limit: int | None = None) -> StagedBlob:
        """Hash and hold the stream's bytes; nothing is visible until ``commit``."""

    def put(self, src: BinaryIO, expected_sha256: str | None = None,
            limit: int | None = None) -> tuple[str, int]:
        """Stage and commit; returns ``(sha256, size)``."""

    def exists(self, sha256: str) -> bool: ...

    def open(self, sha256: str) -> BinaryIO:
        """Open a blob for reading (unverified; use ``fetch`` to verify)."""

    def fetch(self, sha256: str, dest: Path) -> Path:
        """Copy a blob to ``dest`` atomically, verifying its hash; raises CorruptBlobError."""

    def delete(self, sha256: str) -> None: ...

    def list(self) -> Iterator[str]: ...

    def hash_of(self, sha256: str) -> str:
        """Re-hash the stored bytes (for ``registry verify``)."""


class _StagingStore:
    """``put`` for stores that ``stage`` (both of them)."""

    def stage(self, src: BinaryIO, expected_sha256: str | None = None,
              limit: int | None = None) -> StagedBlob:
        raise NotImplementedError

    def put(self, src: BinaryIO, expected_sha256: str | None = None,
            limit: int | None = None) -> tuple[str, int]:
        with self.stage(src, expected_sha256, limit) as staged:
            return staged.sha256, staged.bytes


class LocalBlobStore(_StagingStore):
    """Blobs under ``root/ab/abcdef…``; temp files under ``root/.tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise NotFoundError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def stage(self, src: BinaryIO, expected_sha256: str | None = None,
              limit: int | None = None) -> StagedBlob:
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix=owner_tag())
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                sha, size = _copy_hashing(src, out, limit)
                out.flush()
                os.fsync(out.fileno())
            if expected_sha256 is not None and sha != expected_sha256:
                raise CorruptBlobError(expected_sha256, f"upload hashed to {sha[:12]}")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

        def commit() -> None:
            final = self.path(sha)
            if final.exists():
                tmp.unlink(missing_ok=True)
                os.utime(final)  # fresh again: the orphan sweep's grace starts over
                return
            final.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            _fsync_dir(final.parent)

        return StagedBlob(sha, size, commit, lambda: tmp.unlink(missing_ok=True))

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def open(self, sha256: str) -> BinaryIO:
        try:
            return open(self.path(sha256), "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {sha256[:12]} is missing from the store") from exc

    def fetch(self, sha256: str, dest: Path) -> Path:
        with self.open(sha256) as src:
            return _write_verified(src, sha256, dest)

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def list(self) -> Iterator[str]:
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                yield from sorted(p.name for p in sub.iterdir())

    def hash_of(self, sha256: str) -> str:
        try:
            return sha256_file(self.path(sha256))
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {sha256[:12]} is missing from the store") from exc

    def clean_tmp(self, grace: float) -> int:
        """Remove temporary files of dead writers (see :func:`is_abandoned`); a live
        writer's are kept, so this is safe during traffic. Returns how many went."""
        return sweep_abandoned(self.tmp, grace)

    def mtime(self, sha256: str) -> float:
        return self.path(sha256).stat().st_mtime


class S3BlobStore(_StagingStore):
    """Blobs as objects ``<prefix>/blobs/<sha256>`` in an S3-compatible bucket (boto3)."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}"
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def key(self, sha256: str) -> str:
        parts = [self.prefix, "blobs", sha256] if self.prefix else ["blobs", sha256]
        return "/".join(parts)

    def stage(self, src: BinaryIO, expected_sha256: str | None = None,
              limit: int | None = None) -> StagedBlob:
        # Spool locally first: the hash must be known before the object gets its final key.
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by commit or discard)
        try:
            sha, size = _copy_hashing(src, spool, limit)
            if expected_sha256 is not None and sha != expected_sha256:
                raise CorruptBlobError(expected_sha256, f"upload hashed to {sha[:12]}")
        except BaseException:
            spool.close()
            raise

        def commit() -> None:
            try:
                if not self.exists(sha):
                    spool.seek(0)
                    self.client.upload_fileobj(spool, self.bucket, self.key(sha),
                                               ExtraArgs={"Metadata": {"sha256": sha}})
            finally:
                spool.close()

        return StagedBlob(sha, size, commit, spool.close)

    def mtime(self, sha256: str) -> float:
        head = self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        return head["LastModified"].timestamp()

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise

    def open(self, sha256: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            raise NotFoundError(f"blob {sha256[:12]} is missing from the store") from exc
        return obj["Body"]

    def fetch(self, sha256: str, dest: Path) -> Path:
        src = self.open(sha256)
        try:
            return _write_verified(src, sha256, dest)
        finally:
            src.close()

    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    def list(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        start = self.key("")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                yield item["Key"][len(start):]

    def hash_of(self, sha256: str) -> str:
        digest = hashlib.sha256()
        body = self.open(sha256)
        try:
            while chunk := body.read(CHUNK):
                digest.update(chunk)
        finally:
            body.close()
        return digest.hexdigest()


def _write_verified(src: BinaryIO, sha256: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{owner_tag()}{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            got, _ = _copy_hashing(src, out)
        if got != sha256:
            raise CorruptBlobError(sha256)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(url: str, endpoint_url: str | None = None) -> BlobStore:
    """Pick the store from a URL: ``file:///path`` or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        root = Path(parsed.path if parsed.scheme else url)
        root.mkdir(parents=True, exist_ok=True)
        return LocalBlobStore(root)
    if parsed.scheme == "s3":
        return S3BlobStore(parsed.netloc, parsed.path, endpoint_url=endpoint_url)
    raise ValueError(f"unsupported store URL {url!r}: use file:///path or s3://bucket/prefix")


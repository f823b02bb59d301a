"""The registry's own checks cannot be fooled by uploads, never break live writers, and
every bad input is a 4xx: one test per finding of the reliability issue (numbered)."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanta.config import Settings
from quanta.registry import Registry
from quanta.registry.layout import MANIFEST_KIND, STAGING_DIR
from quanta.registry.store import LocalBlobStore, owner_tag
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import dead_pid, fake_base_models
from tune.api.app import create_app

CHAT = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def _lines(*records: Any) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@pytest.fixture
def api(quanta_home: Path) -> dict[str, Any]:
    """The tune API over a fresh registry, three tenants with a key each."""
    registry = Registry.open(Settings(home=quanta_home, allow_anonymous=False,
                                      sweep_grace=3600))
    fake_base_models(registry, quanta_home.parent / "fake-model", "smollm2-135m-instruct")
    keys = {}
    for tenant in ("t0", "t1", "t2"):
        create_tenant(registry, tenant)
        keys[tenant] = {"Authorization": f"Bearer {create_key(registry, tenant)[1]}"}
    app = create_app(registry.settings, registry)
    return {"registry": registry, "app": app, "client": TestClient(app), "keys": keys}


def _upload(client: TestClient, headers: dict[str, str], data: bytes,
            name: str = "d.jsonl") -> Any:
    return client.post("/v1/files", headers=headers, files={"file": (name, data)},
                       data={"purpose": "fine-tune"})


# -- 1. manifests are recorded, never guessed ----------------------------------------------

def test_1_uploads_that_look_like_manifests_fool_neither_verify_nor_gc(api: dict) -> None:
    registry, client, keys = api["registry"], api["client"], api["keys"]
    array = _upload(client, keys["t0"], json.dumps([CHAT, CHAT]).encode(), "d.json")
    assert array.status_code == 200, array.text  # a JSON-array dataset: supported
    # A record shaped like a tree manifest naming another tenant's blob and a missing one.
    victim = _upload(client, keys["t1"], _lines(CHAT, CHAT, CHAT)).json()
    victim_sha = registry.get_file("t1", victim["id"]).sha256
    lookalike = {"kind": MANIFEST_KIND, "files": {"x": {"sha256": victim_sha, "bytes": 1},
                                                  "y": {"sha256": "0" * 64, "bytes": 1}},
                 **CHAT}
    crafted = _upload(client, keys["t2"], json.dumps(lookalike).encode(), "c.json")
    assert crafted.status_code == 200, crafted.text
    report = registry.verify()
    assert report.ok and report.missing == [], report  # no false "missing blob" alarm
    assert client.delete(f"/v1/files/{victim['id']}", headers=keys["t1"]).status_code == 200
    assert not registry.store.exists(victim_sha)  # the lookalike keeps nothing alive
    assert client.delete(f"/v1/files/{array.json()['id']}",
                         headers=keys["t0"]).status_code == 200
    assert registry.verify().ok


# -- 2. deleting costs the row, not the store -----------------------------------------------

def test_2_delete_reads_no_blob(api: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    registry, client, keys = api["registry"], api["client"], api["keys"]
    big = registry.settings.resolved_home.parent / "big"
    big.mkdir()
    for i in range(20):
        (big / f"part{i}.bin").write_bytes(os.urandom(64 * 1024))
    registry.add_base_model("big", big, source="test")
    file_id = _upload(client, keys["t0"], _lines(CHAT)).json()["id"]
    reads = Counter()
    for name in ("open", "hash_of", "fetch"):
        original = getattr(LocalBlobStore, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            reads[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(LocalBlobStore, name, counting)
    assert client.delete(f"/v1/files/{file_id}", headers=keys["t0"]).status_code == 200
    assert sum(reads.values()) == 0, reads  # references live in the database


# -- 3. verify and gc leave live writers alone ----------------------------------------------

def test_3_verify_keeps_live_writers_temp_files_and_sweeps_dead_ones(api: dict) -> None:
    registry = api["registry"]
    tmp = registry.store.tmp
    live = tmp / f"{owner_tag()}live"  # this process: alive
    live.write_bytes(b"half")
    pid = dead_pid()
    dead = tmp / f"{owner_tag().split('.')[0]}.{pid}.dead"
    dead.write_bytes(b"half")
    report = registry.verify()
    assert live.exists() and not dead.exists() and report.temp_removed == 1
    registry.collect_garbage()
    assert live.exists()


def test_3_uploads_survive_verify_and_gc_running_beside_them(api: dict) -> None:
    registry, client, keys = api["registry"], api["client"], api["keys"]
    stop = threading.Event()
    errors: list[BaseException] = []

    def housekeeping() -> None:
        while not stop.is_set():
            try:
                registry.verify()
                registry.collect_garbage()
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=housekeeping, daemon=True)
    thread.start()
    statuses = Counter(_upload(client, keys["t0"], _lines(CHAT, {**CHAT, "i": i})).status_code
                       for i in range(40))
    stop.set()
    thread.join(timeout=60)
    assert statuses == {200: 40}, statuses
    assert not errors, errors


# -- 4. the materialised cache is checked before use, and by verify -------------------------

def test_4_a_flipped_byte_in_the_cache_is_never_used(registry: Registry, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(8192))
    row = registry.add_base_model("m", model, source="test")
    cached = registry.materialize(row.sha256)
    weights = cached / "weights.bin"
    original = weights.read_bytes()
    weights.chmod(0o644)
    weights.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    again = registry.materialize(row.sha256)  # detected (mtime changed), rebuilt
    assert (again / "weights.bin").read_bytes() == original
    # A flip that keeps the mtime is found by verify, which drops the copy.
    stat = (again / "weights.bin").stat()
    (again / "weights.bin").chmod(0o644)
    (again / "weights.bin").write_bytes(original[:5] + bytes([original[5] ^ 1]) + original[6:])
    os.utime(again / "weights.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report = registry.verify()
    assert report.cache_corrupt == [row.sha256] and report.ok
    assert (registry.materialize(row.sha256) / "weights.bin").read_bytes() == original


# -- 5. the upload parser caps what is not the file -----------------------------------------

def test_5_non_file_parts_are_capped_and_a_cut_body_is_refused(api: dict) -> None:
    client, h = api["client"], api["keys"]["t0"]
    many = b"".join(b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % i
                    for i in range(5000)) + b"--b--\r\n"
    big = (b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n' + b"x" * 4000
           + b"\r\n") * 30 + b"--b--\r\n"
    cut = (b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
           b'--b\r\nContent-Disposition: form-data; name="file"; filename="d.jsonl"\r\n\r\n'
           + _lines(CHAT))
    for body in (many, big, cut):
        r = client.post("/v1/files", headers={**h, "content-type": "multipart/form-data; "
                                                                   "boundary=b"}, content=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "file"
    assert api["registry"].list_files("t0") == []


# -- 6. bad input is a 4xx (a full disk a 507), and changes nothing -------------------------

@pytest.mark.parametrize("case", ["nested-line", "huge-number", "nested-job", "long-name",
                                  "other-boundary"])
def test_6_hostile_input_is_a_4xx(api: dict, case: str) -> None:
    client, h, registry = api["client"], api["keys"]["t0"], api["registry"]
    if case == "nested-line":
        r = _upload(client, h, b"[" * 100_000 + b"\n")
    elif case == "huge-number":
        r = _upload(client, h, b'{"messages": [], "n": ' + b"1" * 100_000 + b"}\n")
    elif case == "nested-job":
        r = client.post("/v1/fine_tuning/jobs", content=b"[" * 50_000,
                        headers={**h, "content-type": "application/json"})
    elif case == "long-name":
        r = _upload(client, h, _lines(CHAT), name="a" * 5000 + ".jsonl")
    else:
        r = client.post("/v1/files", content=b'--zzz\r\nContent-Disposition: form-data; '
                        b'name="file"; filename="d.jsonl"\r\n\r\nxx\r\n--zzz--\r\n',
                        headers={**h, "content-type": "multipart/form-data; boundary=aaa"})
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert registry.list_files("t0") == [] and registry.verify().ok


def test_6_a_full_disk_is_507_and_stores_nothing(api: dict,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    client, h, registry = api["client"], api["keys"]["t0"], api["registry"]

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalBlobStore, "stage", full)
    r = _upload(client, h, _lines(CHAT))
    assert r.status_code == 507, r.text
    assert r.json()["error"]["code"] == "insufficient_storage"
    assert registry.list_files("t0") == [] and registry.verify().ok


def test_6_models_import_on_a_full_disk_is_a_message(tmp_path: Path) -> None:
    script = ("import errno, sys\nimport quanta.models\n"
              "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device', "
              "'/var/lib/quanta')\n"
              "quanta.models.import_model = full\n"
              "from quanta.cli import main\nsys.argv = ['quanta', 'models', 'import', "
              f"{str(tmp_path / 'x.gguf')!r}]\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "QUANTA_HOME": str(tmp_path / "home")},
                          timeout=120)
    assert proc.returncode == 1
    assert "disk is full" in proc.stderr and "Traceback" not in proc.stderr


# -- 7. leftovers of killed processes are collected -----------------------------------------

def test_7_killed_exports_and_imports_leave_nothing_for_long(registry: Registry) -> None:
    home = registry.settings.resolved_home
    tag = f"{owner_tag().split('.')[0]}.{dead_pid()}."
    staging = home / STAGING_DIR / f"{tag}export-abc"
    (staging / "out").mkdir(parents=True)
    (staging / "out" / "model.gguf").write_bytes(b"x" * 1000)
    live = home / STAGING_DIR / f"{owner_tag()}export-live"
    live.mkdir()
    orphan_sha, _ = registry.store.put(io.BytesIO(b"left by a failed import"))
    report = registry.verify()
    assert report.staging_removed == 1 and not staging.exists() and live.exists()
    assert report.orphans == [orphan_sha] and report.orphans_collectable == 0  # too recent
    old = time.time() - 2 * registry.settings.sweep_grace
    os.utime(registry.store.path(orphan_sha), (old, old))
    assert registry.verify().orphans_collectable == 1
    registry.collect_garbage()
    assert not registry.store.exists(orphan_sha) and registry.verify().orphans == []


# -- 8. a delete racing an upload of the same content ---------------------------------------

def test_8_delete_racing_an_upload_of_the_same_content_is_answered_right(api: dict) -> None:
    registry, app, h = api["registry"], api["app"], api["keys"]["t0"]
    data = _lines(CHAT, {**CHAT, "same": True})
    statuses: Counter[tuple[str, int]] = Counter()
    kept: list[str] = []
    for _ in range(20):
        old = _upload(TestClient(app), h, data).json()["id"]
        results: dict[str, Any] = {}

        def delete(old: str = old, results: dict[str, Any] = results) -> None:
            results["delete"] = TestClient(app).delete(f"/v1/files/{old}", headers=h)

        def upload(results: dict[str, Any] = results) -> None:
            results["upload"] = _upload(TestClient(app), h, data)

        threads = [threading.Thread(target=delete), threading.Thread(target=upload)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        statuses[("delete", results["delete"].status_code)] += 1
        statuses[("upload", results["upload"].status_code)] += 1
        kept.append(results["upload"].json()["id"])
    assert statuses == {("delete", 200): 20, ("upload", 200): 20}, statuses
    for file_id in kept:  # every acknowledged upload is there, byte for byte
        row = registry.get_file("t0", file_id)
        assert registry.blob_path(row.sha256).read_bytes() == data
    assert registry.verify().ok


# -- 9. children die with a killed parent ---------------------------------------------------

PARENT = """
import sys, time
from pathlib import Path
from quanta.processes import start_process
child = start_process([sys.executable, "-c", "import time; time.sleep(120)"],
                      Path(sys.argv[1]))
print(child.pid, flush=True)
time.sleep(120)
"""


def test_9_children_die_when_their_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "child.log")],
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())  # type: ignore[union-attr]
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_9_a_next_run_stops_what_a_killed_run_left(tmp_path: Path) -> None:
    from quanta.processes import ServiceLedger, start_process

    ledger = ServiceLedger(tmp_path / "services.json")
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]
    proc = start_process(argv, tmp_path / "svc.log")
    ledger.add(proc, argv)
    # (the run that started it is killed here; its ledger stays behind)
    assert ServiceLedger(tmp_path / "services.json").stop_stale(grace=5) == [proc.pid]
    proc.wait(timeout=10)
    assert ledger.stop_stale() == []  # nothing twice, and never a reused pid


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- 10. hardening decisions ------------------------------------------------------------------

def test_10_anonymous_access_on_a_public_bind_needs_saying_so(monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    from quanta.tenancy import check_bind

    check_bind(Settings(), "127.0.0.1")  # the localhost default
    with pytest.raises(ValueError, match="QUANTA_ALLOW_ANONYMOUS"):
        check_bind(Settings(), "0.0.0.0")
    check_bind(Settings(allow_anonymous=True), "0.0.0.0")  # said explicitly
    check_bind(Settings(allow_anonymous=False), "0.0.0.0")
    monkeypatch.setenv("QUANTA_ALLOW_ANONYMOUS", "true")
    check_bind(Settings(), "0.0.0.0")


def test_10_metrics_need_the_token_when_one_is_set(quanta_home: Path) -> None:
    registry = Registry.open(Settings(home=quanta_home, metrics_token="s3cret"))
    client = TestClient(create_app(registry.settings, registry))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and "quanta_tune_jobs" in ok.text


def test_10_two_authorization_headers_are_refused(api: dict) -> None:
    client, keys = api["client"], api["keys"]
    headers = [("authorization", keys["t0"]["Authorization"]),
               ("authorization", keys["t1"]["Authorization"])]
    r = client.get("/v1/files", headers=headers)
    assert r.status_code == 400, r.text


def test_10_models_import_does_not_follow_links_out_of_the_directory(registry: Registry,
                                                                     tmp_path: Path) -> None:
    from quanta.models import ModelImportError, import_model

    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "model.safetensors").symlink_to("/etc/hostname")
    with pytest.raises(ModelImportError, match="links outside"):
        import_model(registry, src, "linked")
    assert registry.list_base_models() == []


def test_10_the_limiter_counts_sequences_not_requests() -> None:
    from quanta.http_errors import HTTPBadRequest
    from serve.limits import RateLimitedError, TenantLimiter, TenantLimits

    limiter = TenantLimiter(TenantLimits(max_concurrency=8))
    with pytest.raises(HTTPBadRequest):  # n=200 can never fit in 8
        limiter.acquire("t", 200)
    limiter.acquire("t", 6)
    with pytest.raises(RateLimitedError):
        limiter.acquire("t", 3)
    limiter.release("t", 6)
    limiter.acquire("t", 8)
    assert limiter.in_flight("t") == 8

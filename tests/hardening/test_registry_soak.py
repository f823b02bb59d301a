"""Soak: three tenants upload, delete and create jobs for a minute while ``verify`` and
``gc`` loop, as cron would run them on a busy server. No 5xx; the registry stays clean;
everything committed is readable, everything deleted is gone."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quanta.config import Settings
from quanta.registry import NotFoundError, Registry
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import fake_base_models
from tune.api.app import create_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SOAK_SECONDS = 60
TENANTS = ("s0", "s1", "s2")


def _dataset(rng: random.Random) -> bytes:
    # A small pool of contents, so that tenants upload and delete the same blobs at once.
    n = rng.randint(1, 4)
    records = [{"messages": [{"role": "user", "content": f"q{i}"},
                             {"role": "assistant", "content": f"a{i}"}]} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_soak_uploads_deletes_and_jobs_beside_verify_and_gc(quanta_home: Path) -> None:
    registry = Registry.open(Settings(home=quanta_home, allow_anonymous=False))
    fake_base_models(registry, quanta_home.parent / "fake-model", "smollm2-135m-instruct")
    keys = {}
    for tenant in TENANTS:
        create_tenant(registry, tenant)
        keys[tenant] = {"Authorization": f"Bearer {create_key(registry, tenant)[1]}"}
    app = create_app(registry.settings, registry)
    deadline = time.monotonic() + SOAK_SECONDS
    lock = threading.Lock()
    statuses: Counter[int] = Counter()
    committed: dict[str, tuple[str, bytes]] = {}  # file id -> (tenant, content)
    deleted: set[str] = set()
    failures: list[str] = []

    def client_loop(tenant: str, seed: int) -> None:
        rng = random.Random(seed)
        client = TestClient(app)
        mine: list[str] = []
        while time.monotonic() < deadline:
            action = rng.random()
            if action < 0.55 or not mine:
                data = _dataset(rng)
                r = client.post("/v1/files", headers=keys[tenant],
                                files={"file": ("d.jsonl", data)}, data={"purpose": "fine-tune"})
                if r.status_code == 200:
                    mine.append(r.json()["id"])
                    with lock:
                        committed[r.json()["id"]] = (tenant, data)
            elif action < 0.85:
                file_id = mine.pop(rng.randrange(len(mine)))
                r = client.delete(f"/v1/files/{file_id}", headers=keys[tenant])
                if r.status_code == 200:
                    with lock:
                        deleted.add(file_id)
                elif r.status_code == 409:  # used by a job: stays
                    mine.append(file_id)
            else:
                r = client.post("/v1/fine_tuning/jobs", headers=keys[tenant], json={
                    "model": "smollm2-135m-instruct", "training_file": rng.choice(mine)})
            with lock:
                statuses[r.status_code] += 1

    def housekeeping() -> None:
        while time.monotonic() < deadline:
            try:
                report = registry.verify()
                if not report.ok:
                    failures.append(f"verify during traffic: {report}")
                registry.collect_garbage()
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            with lock:
                statuses["housekeeping"] += 1  # type: ignore[index]

    threads = [threading.Thread(target=client_loop, args=(tenant, i), daemon=True)
               for i, tenant in enumerate(TENANTS)]
    threads.append(threading.Thread(target=housekeeping, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SOAK_SECONDS + 120)
    print(f"soak: {dict(statuses)}")

    assert not failures, failures[:5]
    assert not [s for s in statuses if isinstance(s, int) and s >= 500], statuses
    assert statuses[200] > 100 and statuses["housekeeping"] > 3, statuses  # type: ignore[index]
    registry.collect_garbage()
    report = registry.verify()
    assert report.ok and not report.orphans, report
    for file_id, (tenant, data) in committed.items():
        if file_id in deleted:
            with pytest.raises(NotFoundError):
                registry.get_file(tenant, file_id)
        else:
            row = registry.get_file(tenant, file_id)
            assert registry.blob_path(row.sha256).read_bytes() == data

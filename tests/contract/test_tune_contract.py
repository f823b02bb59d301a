"""The tune API held to OpenAI's published description, not only to the lenient SDK.

Each response of a route Quanta shares with OpenAI (files, fine-tuning jobs, events,
checkpoints, pause/resume) is validated against that route's response schema from
``openai/openai-openapi`` (``openai-fine-tuning.json``, cut by
``extract_openai_schemas.py``): required fields, types, enums and ranges; errors have
OpenAI's status codes and ``ErrorResponse`` body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanta.config import Settings
from quanta.registry import Registry
from quanta.tenancy import create_key
from tests.support.fixtures import arithmetic_chat, fake_base_models
from tests.support.openai_schema import OpenAISchemas
from tune.api.app import create_app

conforms = OpenAISchemas("openai-fine-tuning.json", Path(__file__).parent).conforms
MODEL = "smollm2-135m-instruct"


def error(response: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = conforms(response.json(), "ErrorResponse")["error"]
    if param is not None:
        assert body["param"] == param
    return body


@pytest.fixture
def api(quanta_home: Path, tmp_path: Path) -> Any:
    settings = Settings(home=quanta_home, allow_anonymous=False)
    registry = Registry.open(settings)
    fake_base_models(registry, tmp_path / "models", MODEL)
    _, key = create_key(registry, "local")
    client = TestClient(create_app(settings, registry))
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def _upload(api: Any, name: str = "d.jsonl") -> dict[str, Any]:
    data = "".join(json.dumps(r) + "\n" for r in arithmetic_chat(3)).encode()
    response = api.post("/v1/files", files={"file": (name, data)},
                        data={"purpose": "fine-tune"})
    assert response.status_code == 200, response.text
    return conforms(response.json(), "OpenAIFile")


def test_files_routes_conform(api: Any) -> None:
    empty = conforms(api.get("/v1/files").json(), "ListFilesResponse")
    assert empty["data"] == []
    first, second = _upload(api, "a.jsonl"), _upload(api, "b.jsonl")
    listing = conforms(api.get("/v1/files").json(), "ListFilesResponse")
    assert [f["id"] for f in listing["data"]] == [second["id"], first["id"]]
    ascending = conforms(api.get("/v1/files?order=asc&limit=1").json(), "ListFilesResponse")
    assert [f["id"] for f in ascending["data"]] == [first["id"]] and ascending["has_more"]
    big = api.get("/v1/files?limit=10000")  # OpenAI's documented range is 1..10000
    assert len(conforms(big.json(), "ListFilesResponse")["data"]) == 2
    conforms(api.get(f"/v1/files/{first['id']}").json(), "OpenAIFile")
    for query, param in (("limit=0", "limit"), ("limit=abc", "limit"),
                         ("limit=10001", "limit"), ("order=sideways", "order")):
        error(api.get(f"/v1/files?{query}"), 400, param)
    error(api.get("/v1/files/file-nope"), 404)
    results = api.post("/v1/files", files={"file": ("r.csv", b"step\n1\n")},
                       data={"purpose": "fine-tune-results"})  # jobs write those, not users
    error(results, 400, "purpose")
    deleted = api.delete(f"/v1/files/{second['id']}")
    assert conforms(deleted.json(), "DeleteFileResponse")["deleted"] is True


def test_fine_tuning_routes_conform(api: Any) -> None:
    file_id = _upload(api)["id"]
    wandb = {"type": "wandb", "wandb": {"project": "physics", "tags": ["contract"]}}
    created = api.post("/v1/fine_tuning/jobs", json={"model": MODEL, "training_file": file_id,
                                                     "metadata": {"team": "physics"},
                                                     "integrations": [wandb]})
    job = conforms(created.json(), "FineTuningJob")
    assert job["integrations"] == [{"type": "wandb", "wandb": {
        "project": "physics", "name": None, "entity": None, "tags": ["contract"]}}]
    listing = conforms(api.get("/v1/fine_tuning/jobs?limit=1").json(),
                       "ListPaginatedFineTuningJobsResponse")
    assert [j["id"] for j in listing["data"]] == [job["id"]]
    conforms(api.get(f"/v1/fine_tuning/jobs/{job['id']}").json(), "FineTuningJob")

    paused = api.post(f"/v1/fine_tuning/jobs/{job['id']}/pause").json()
    # OpenAI documents pause as answering status "paused", which its FineTuningJob schema's
    # enum does not list yet: every other field must conform.
    assert paused["status"] == "paused"
    conforms({**paused, "status": "queued"}, "FineTuningJob")
    error(api.post(f"/v1/fine_tuning/jobs/{job['id']}/pause"), 400, "fine_tuning_job_id")
    conforms(api.post(f"/v1/fine_tuning/jobs/{job['id']}/resume").json(), "FineTuningJob")
    error(api.post(f"/v1/fine_tuning/jobs/{job['id']}/resume"), 400, "fine_tuning_job_id")

    events = conforms(api.get(f"/v1/fine_tuning/jobs/{job['id']}/events?limit=2").json(),
                      "ListFineTuningJobEventsResponse")
    assert len(events["data"]) == 2 and events["has_more"]
    checkpoints = conforms(api.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json(),
                           "ListFineTuningJobCheckpointsResponse")
    assert checkpoints["data"] == []
    cancelled = conforms(api.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").json(),
                         "FineTuningJob")
    assert cancelled["status"] == "cancelled"

    for path in ("/v1/fine_tuning/jobs?limit=0", "/v1/fine_tuning/jobs?limit=abc",
                 f"/v1/fine_tuning/jobs/{job['id']}/events?limit=abc"):
        error(api.get(path), 400, "limit")
    for path in ("/v1/fine_tuning/jobs/ftjob-nope", "/v1/fine_tuning/jobs/ftjob-nope/events"):
        error(api.get(path), 404)
    for action in ("pause", "resume", "cancel"):
        error(api.post(f"/v1/fine_tuning/jobs/ftjob-nope/{action}"), 404)
    error(api.post("/v1/fine_tuning/jobs", json={"model": MODEL}), 400, "training_file")


def test_uploads_routes_conform(api: Any) -> None:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in arithmetic_chat(3))
    upload = conforms(api.post("/v1/uploads", json={
        "filename": "d.jsonl", "purpose": "fine-tune", "bytes": len(data),
        "mime_type": "application/jsonl"}).json(), "Upload")
    part = api.post(f"/v1/uploads/{upload['id']}/parts", files={"data": ("blob", data)})
    part = conforms(part.json(), "UploadPart")
    done = conforms(api.post(f"/v1/uploads/{upload['id']}/complete",
                             json={"part_ids": [part["id"]]}).json(), "Upload")
    assert done["status"] == "completed" and conforms(done["file"], "OpenAIFile")
    error(api.post("/v1/uploads", json={"filename": "d", "purpose": "fine-tune"}), 400)
    error(api.post("/v1/uploads/upload_nope/cancel"), 404)
    error(api.post(f"/v1/uploads/{upload['id']}/cancel"), 400, "upload_id")


def test_permission_routes_conform(api: Any, tmp_path: Path) -> None:
    from quanta.tenancy import create_tenant
    from tests.support.fixtures import fake_adapter_dir

    registry = api.app.state.registry
    create_tenant(registry, "globex")
    model = registry.add_adapter("local", MODEL, fake_adapter_dir(tmp_path / "a"),
                                 suffix="s").name
    route = f"/v1/fine_tuning/checkpoints/{model}/permissions"
    empty = conforms(api.get(route).json(), "ListFineTuningCheckpointPermissionResponse")
    assert empty["data"] == []
    created = conforms(api.post(route, json={"project_ids": ["globex"]}).json(),
                       "ListFineTuningCheckpointPermissionResponse")
    [permission] = created["data"]
    conforms(api.get(route).json(), "ListFineTuningCheckpointPermissionResponse")
    deleted = api.delete(f"{route}/{permission['id']}").json()
    conforms(deleted, "DeleteFineTuningCheckpointPermissionResponse")
    error(api.delete(f"{route}/{permission['id']}"), 404)
    error(api.post(route, json={"project_ids": "globex"}), 400, "project_ids")
    error(api.get("/v1/fine_tuning/checkpoints/ft:nope/permissions"), 404)

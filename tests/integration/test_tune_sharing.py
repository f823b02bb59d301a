"""Sharing a fine-tuned model with another tenant through OpenAI's checkpoint permissions,
with the official SDK: the grantee fine-tunes from it, the owner alone manages it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.fine_tuning.checkpoints import (
    PermissionCreateResponse,
    PermissionDeleteResponse,
)

from quanta.config import Settings
from quanta.registry import Registry
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import arithmetic_chat, fake_adapter_dir, fake_base_models

MODEL = "smollm2-135m-instruct"


@pytest.fixture
def env(quanta_home: Path, tmp_path: Path) -> dict[str, Any]:
    settings = Settings(home=quanta_home, allow_anonymous=False)
    registry = Registry.open(settings)
    fake_base_models(registry, tmp_path / "models", MODEL)
    from tune.api.app import create_app

    http = TestClient(create_app(settings, registry))
    clients = {}
    for tenant in ("acme", "globex", "initech"):
        create_tenant(registry, tenant)
        clients[tenant] = openai.OpenAI(base_url="http://testserver/v1", max_retries=0,
                                        api_key=create_key(registry, tenant)[1],
                                        http_client=http)
    adapter = registry.add_adapter("acme", MODEL, fake_adapter_dir(tmp_path / "a"),
                                   suffix="physics")
    return {"registry": registry, "adapter": adapter.name, **clients}


def _job(client: openai.OpenAI, model: str) -> Any:
    data = "".join(json.dumps(r) + "\n" for r in arithmetic_chat(3)).encode()
    file_id = client.files.create(file=("d.jsonl", data), purpose="fine-tune").id
    return client.fine_tuning.jobs.create(model=model, training_file=file_id)


def test_owner_shares_grantee_fine_tunes_revoke_stops_it(env: dict[str, Any]) -> None:
    acme, globex, model = env["acme"], env["globex"], env["adapter"]
    permissions = acme.fine_tuning.checkpoints.permissions
    with pytest.raises(openai.BadRequestError) as unshared:
        _job(globex, model)
    assert unshared.value.body["param"] == "model"

    granted = permissions.create(model, project_ids=["globex", "initech"])
    for row in granted.data:
        PermissionCreateResponse.model_validate(row.model_dump())
    assert [p.project_id for p in granted.data] == ["globex", "initech"]
    again = permissions.create(model, project_ids=["globex"])  # kept, not duplicated
    assert again.data[0].id == granted.data[0].id

    job = _job(globex, model)  # the grantee continues the shared adapter
    assert job.model == model and job.status in ("validating_files", "queued")
    listing = permissions.list(model, project_id="globex")
    assert [p.id for p in listing.data] == [granted.data[0].id]
    page = permissions.list(model, limit=1, order="ascending")
    assert len(page.data) == 1 and page.has_more

    # Only the owner manages permissions; to anyone else the model does not exist.
    for client in (globex, env["initech"]):
        with pytest.raises(openai.NotFoundError):
            client.fine_tuning.checkpoints.permissions.list(model)
        with pytest.raises(openai.NotFoundError):
            client.fine_tuning.checkpoints.permissions.create(model, project_ids=["globex"])
        with pytest.raises(openai.NotFoundError):
            client.fine_tuning.checkpoints.permissions.delete(
                granted.data[0].id, fine_tuned_model_checkpoint=model)

    deleted = permissions.delete(granted.data[0].id, fine_tuned_model_checkpoint=model)
    PermissionDeleteResponse.model_validate(deleted.model_dump())
    assert deleted.deleted and deleted.object == "checkpoint.permission"
    with pytest.raises(openai.BadRequestError):
        _job(globex, model)  # revoked: not usable any more
    _job(env["initech"], model)  # the other grant stands
    with pytest.raises(openai.NotFoundError):
        permissions.delete(granted.data[0].id, fine_tuned_model_checkpoint=model)


def test_bad_permission_requests(env: dict[str, Any]) -> None:
    acme, model = env["acme"], env["adapter"]
    permissions = acme.fine_tuning.checkpoints.permissions
    for project_ids, message in ((["nobody"], "No such project"), (["acme"], "owner"),
                                 ([], None)):
        with pytest.raises(openai.BadRequestError) as bad:
            permissions.create(model, project_ids=project_ids)
        assert bad.value.body["param"] == "project_ids"
        if message:
            assert message in bad.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        permissions.create("ft:nothing", project_ids=["globex"])
    with pytest.raises(openai.BadRequestError) as order:
        permissions.list(model, order="sideways")  # type: ignore[arg-type]
    assert order.value.body["param"] == "order"
    assert env["registry"].verify().ok


def test_what_a_grantee_trains_from_a_shared_model_follows_the_grant(
        env: dict[str, Any], tmp_path: Path) -> None:
    """An adapter trained from a shared model records it (the worker's ``derived_from``):
    it stays usable only while the grant stands, and can be neither shared on nor
    exported."""
    from quanta.registry import NotFoundError
    from quantize.errors import ExportInputError
    from quantize.exporters import export
    from tune.train.worker import derived_from

    registry = env["registry"]
    origin = registry.resolve_adapter("acme", env["adapter"])
    [grant] = registry.permissions.grant(origin.id, ["globex"])
    assert derived_from(origin, "acme") is None  # the owner's own work
    recorded = derived_from(origin, "globex")
    assert recorded == {"adapter": origin.id, "owner": "acme"}
    derived = registry.add_adapter("globex", MODEL, fake_adapter_dir(tmp_path / "d"),
                                   suffix="d", config={"derived_from": recorded})
    assert derived_from(derived, "globex") == recorded  # a chain keeps the first origin
    assert registry.usable_adapter("globex", derived.name).id == derived.id
    with pytest.raises(openai.BadRequestError) as reshare:
        env["globex"].fine_tuning.checkpoints.permissions.create(derived.name,
                                                                 project_ids=["initech"])
    assert reshare.value.body["code"] == "not_shareable"
    with pytest.raises(ExportInputError):
        export(registry, derived.name, "gguf-f16", tenant_id="globex")

    assert registry.permissions.revoke(origin.id, grant.id)
    with pytest.raises(NotFoundError):
        registry.usable_adapter("globex", derived.name)
    with pytest.raises(openai.BadRequestError):
        _job(env["globex"], derived.name)

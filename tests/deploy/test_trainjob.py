"""Fine-tuning jobs as Kubeflow Trainer TrainJobs: the rendered objects validate against the
upstream CRD (v2.3.0), reference the runtime k8s/ ships, and the dispatcher's calls to the
Kubernetes API are exactly the objects it renders. No cluster: the API is a recording fake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import deploy_checks as checks
import jsonschema
import pytest
import yaml
from crd_schemas import CRD_SCHEMAS

from quanta.data import write_jsonl
from quanta.registry import Registry
from quanta.types import JobStatus
from tests.support.fixtures import arithmetic_chat, seeded_registry, tiny_job
from tune.api.service import TuneService
from tune.plan import DistributedOptions
from tune.train import queue
from tune.train.distributed.kubernetes import (
    GROUP,
    PLURAL,
    VERSION,
    KubernetesDispatcher,
    render_trainjob,
)

TRAINJOB = CRD_SCHEMAS[("trainer.kubeflow.org/v1alpha1", "TrainJob")]


def _schema_errors(obj: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(TRAINJOB).iter_errors(obj)]


def test_a_four_node_trainjob_validates_against_the_upstream_crd() -> None:
    options = DistributedOptions(nodes=4, processes_per_node=8)
    body = render_trainjob("ftjob-AbC123", options, namespace="quanta",
                           worker_id="kubernetes:quanta", gpu=True)
    assert _schema_errors(body) == []
    trainer = body["spec"]["trainer"]
    assert trainer["numNodes"] == 4 and trainer["numProcPerNode"] == 8
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
    assert trainer["command"][-3:] == ["-m", "tune.train.distributed.rank", "ftjob-AbC123"]
    # torchrun's node settings come from Kubeflow's PET_* variables, never from us
    assert not any(e["name"].startswith("PET_") for e in trainer["env"])
    name = body["metadata"]["name"]
    assert name == name.lower() and len(name) <= 63
    # ids differing only in case get different TrainJobs
    other = render_trainjob("ftjob-abc123", options, namespace="quanta",
                            worker_id="kubernetes:quanta")
    assert other["metadata"]["name"] != name


def test_the_schema_catches_a_pre_v2_2_field() -> None:
    body = render_trainjob("ftjob-x", DistributedOptions(nodes=2), namespace="quanta",
                           worker_id="kubernetes:quanta")
    body["spec"]["trainer"]["numProcPerNode"] = "auto"  # v2.1's IntOrString
    assert _schema_errors(body)


def test_the_runtime_it_references_ships_with_the_kubeflow_overlay() -> None:
    objs = checks.render(checks.KUSTOMIZATIONS["gpu-kubeflow"])
    body = render_trainjob("ftjob-x", DistributedOptions(nodes=2), namespace="quanta",
                           worker_id="kubernetes:quanta")
    ref = body["spec"]["runtimeRef"]
    runtimes = [o for o in objs if o["kind"] == ref["kind"]
                and o["metadata"]["name"] == ref["name"]]
    assert len(runtimes) == 1
    assert runtimes[0]["metadata"]["namespace"] == body["metadata"]["namespace"]
    job = runtimes[0]["spec"]["template"]["spec"]["replicatedJobs"][0]
    container = job["template"]["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "node"  # the container Kubeflow's trainer settings go to
    assert {"configMapRef": {"name": "quanta-config"}} in container["envFrom"]
    assert not any(o["kind"] == "Deployment" and o["metadata"]["name"] == "quanta-tune-worker"
                   for o in objs)


class FakeCustomObjects:
    """Records what the dispatcher asks of the API server; tests set the status."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.refuse: Exception | None = None

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                        plural: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", (group, version, namespace, plural)))
        if self.refuse:
            raise self.refuse
        if body["metadata"]["name"] in self.objects:  # the API server's 409 AlreadyExists
            raise RuntimeError(f"trainjobs {body['metadata']['name']!r} already exists")
        self.objects[body["metadata"]["name"]] = body
        return body

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                     plural: str, name: str) -> dict[str, Any]:
        self.calls.append(("get", (group, version, namespace, plural, name)))
        return self.objects[name]

    def delete_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                        plural: str, name: str, **kwargs: Any) -> None:
        self.calls.append(("delete", (group, version, namespace, plural, name)))
        self.objects.pop(name)


@pytest.fixture
def tune(quanta_home: Path, base_model_dir: Path) -> tuple[Registry, TuneService, str]:
    registry = seeded_registry(quanta_home, base_model_dir)
    service = TuneService(registry)
    data = write_jsonl(arithmetic_chat(8), quanta_home / "train.jsonl")
    file_id = service.create_file("local", data.name, "fine-tune", data)["id"]
    return registry, service, file_id


def _job(service: TuneService, file_id: str, nodes: int = 2) -> str:
    """A job over ``nodes`` x 1 process (tiny_job's global batch is 4)."""
    body = tiny_job(file_id, distributed={"nodes": nodes, "processes_per_node": 1})
    return service.create_job("local", body)["id"]


def test_the_dispatcher_submits_the_objects_it_renders(tune: Any) -> None:
    registry, service, file_id = tune
    job_id = _job(service, file_id, nodes=4)
    api = FakeCustomObjects()
    dispatcher = KubernetesDispatcher(registry, api, namespace="team-a")
    assert dispatcher.submit_next() == job_id
    expected = render_trainjob(job_id, DistributedOptions(nodes=4, processes_per_node=1),
                               namespace="team-a", worker_id="kubernetes:team-a",
                               max_restarts=registry.settings.tune_max_restarts)
    assert api.calls == [("create", (GROUP, VERSION, "team-a", PLURAL))]
    assert list(api.objects.values()) == [expected]
    assert _schema_errors(expected) == []
    job = service.get_job("local", job_id)
    assert job["status"] == "running"
    events = [e["message"] for e in service.list_events("local", job_id)["data"]]
    assert any(f"Submitted TrainJob team-a/{expected['metadata']['name']}" in m for m in events)
    assert dispatcher.submit_next() is None  # nothing else queued

    # rank 0 (in the pods) finishes the job under the dispatcher's claim: followed no more
    dispatcher.follow()
    assert api.calls[-1][0] == "get"
    assert queue.finish(registry, job_id, "kubernetes:team-a", JobStatus.SUCCEEDED)
    dispatcher.follow()
    assert dispatcher.followed == {}
    assert not any(call[0] == "delete" for call in api.calls)


def test_a_cancelled_job_deletes_its_trainjob(tune: Any) -> None:
    registry, service, file_id = tune
    job_id = _job(service, file_id)
    api = FakeCustomObjects()
    dispatcher = KubernetesDispatcher(registry, api, namespace="quanta")
    dispatcher.submit_next()
    name = next(iter(api.objects))
    service.cancel_job("local", job_id)
    dispatcher.follow()
    assert ("delete", (GROUP, VERSION, "quanta", PLURAL, name)) in api.calls
    assert api.objects == {}
    assert service.get_job("local", job_id)["status"] == "cancelled"


def test_a_paused_then_resumed_job_gets_a_trainjob_of_its_own(tune: Any) -> None:
    registry, service, file_id = tune
    job_id = _job(service, file_id)
    api = FakeCustomObjects()
    dispatcher = KubernetesDispatcher(registry, api, namespace="quanta")
    dispatcher.submit_next()
    [first] = api.objects
    # rank 0 (in the pods) takes the pause at a step boundary; the pods exit
    assert service.pause_job("local", job_id)["status"] == "running"
    assert queue.pause(registry, job_id, "kubernetes:quanta", 2)
    dispatcher.follow()
    assert dispatcher.followed == {}
    assert service.resume_job("local", job_id)["status"] == "queued"
    assert dispatcher.submit_next() == job_id
    second = next(name for name in api.objects if name != first)
    assert second == f"{first}-1" and service.get_job("local", job_id)["status"] == "running"
    # a restarted dispatcher follows the newest TrainJob
    assert KubernetesDispatcher(registry, api, namespace="quanta").followed[job_id].name \
        == second


def test_a_failed_trainjob_fails_the_job_with_its_reason(tune: Any) -> None:
    registry, service, file_id = tune
    job_id = _job(service, file_id)
    api = FakeCustomObjects()
    dispatcher = KubernetesDispatcher(registry, api, namespace="quanta")
    dispatcher.submit_next()
    obj = next(iter(api.objects.values()))
    obj["status"] = {"conditions": [{"type": "Failed", "status": "True",
                                     "reason": "DeadlineExceeded",
                                     "message": "active deadline exceeded"}]}
    # a restarted dispatcher adopts the running job it had submitted
    KubernetesDispatcher(registry, api, namespace="quanta").follow()
    job = service.get_job("local", job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "distributed_failed"
    assert "active deadline exceeded" in job["error"]["message"]
    events = [e["message"] for e in service.list_events("local", job_id)["data"]]
    assert any("Failed (DeadlineExceeded: active deadline exceeded)" in m for m in events)


def test_a_refused_trainjob_fails_the_job(tune: Any) -> None:
    registry, service, file_id = tune
    job_id = _job(service, file_id)
    api = FakeCustomObjects()
    api.refuse = RuntimeError("admission webhook denied the request")
    KubernetesDispatcher(registry, api, namespace="quanta").submit_next()
    job = service.get_job("local", job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "dispatch_failed"
    assert "admission webhook denied" in job["error"]["message"]


def test_quanta_tune_jobs_manifest_prints_the_trainjob(tune: Any, quanta_home: Path) -> None:
    _, service, file_id = tune
    job_id = _job(service, file_id, nodes=4)
    out = subprocess.run([sys.executable, "-m", "quanta.cli", "tune", "jobs", "manifest",
                          job_id, "--namespace", "ml"], capture_output=True, text=True,
                         env={**os.environ, "QUANTA_HOME": str(quanta_home)}, check=True)
    body = yaml.safe_load(out.stdout)
    assert body == render_trainjob(job_id, DistributedOptions(nodes=4, processes_per_node=1),
                                   namespace="ml", worker_id="kubernetes:ml")
    assert _schema_errors(body) == []
    missing = subprocess.run([sys.executable, "-m", "quanta.cli", "tune", "jobs", "manifest",
                              "ftjob-nope"], capture_output=True, text=True,
                             env={**os.environ, "QUANTA_HOME": str(quanta_home)})
    assert missing.returncode == 2 and "ftjob-nope" in missing.stderr + missing.stdout

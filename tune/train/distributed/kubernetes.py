"""A fine-tuning job as a Kubeflow Trainer ``TrainJob`` (trainer.kubeflow.org/v1alpha1).

Kubernetes runs the nodes; Kubeflow Trainer's torch plugin gives each pod torchrun's
``PET_*`` settings (nodes, processes per node, node rank, master address), and the pod
runs the same ``tune.train.distributed.rank`` entry point under torchrun as a worker's
launcher does: rank 0 writes to the registry under the dispatcher's claim. The pods get
the registry's settings from the ``quanta-torch-distributed`` runtime
(``k8s/components/kubeflow-trainer``), which reads the same ConfigMap and Secret as the
worker Deployment.

``render_trainjob`` is what ``quanta tune jobs manifest`` prints; the
``KubernetesDispatcher`` (``quanta tune worker --dispatch kubernetes``) claims queued
jobs, creates their TrainJobs through the official client's ``CustomObjectsApi``, keeps
the claim's heartbeat while they run, deletes a cancelled job's TrainJob, and turns the
TrainJob's conditions into job events. Written against the v2.3.0 CRDs; see
``k8s/README.md`` for what was not run against a real cluster.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quanta.types import EventLevel, JobStatus
from tune.train import queue

if TYPE_CHECKING:
    from quanta.registry import Registry
    from tune.plan import DistributedOptions

log = logging.getLogger("quanta.tune.kubernetes")

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
RUNTIME = "quanta-torch-distributed"  # a TrainingRuntime: k8s/components/kubeflow-trainer
JOB_LABEL = "quanta.dev/fine-tuning-job"
POD_WORKDIR = "/tmp/quanta-job"  # an emptyDir in the runtime
# Per process: LoRA training of the default small model peaks at 3-8 GB RSS.
MEMORY_PER_PROCESS_GI = 8


def trainjob_name(job_id: str, attempt: int = 0) -> str:
    """A DNS label (lowercase, <= 63 characters) unique to the job id (ids are case-sensitive)
    and the attempt: a job paused and resumed, or re-queued, gets a TrainJob of its own
    each time (the finished one keeps its name, and its logs)."""
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "-" for c in job_id.lower())[:40].strip("-")
    return f"{stem}-{digest}" + (f"-{attempt}" if attempt else "")


def _submitted(registry: Registry, job_id: str) -> list[str]:
    """The TrainJobs created for the job so far, oldest first (from its events)."""
    return [data["trainjob"]["name"] for data in registry.jobs.event_data(job_id)
            if isinstance(data.get("trainjob"), dict)]


def dispatcher_id(namespace: str) -> str:
    """The claim a dispatcher's jobs run under (stable across dispatcher restarts)."""
    return f"kubernetes:{namespace}"


def resources_per_node(options: DistributedOptions, *, gpu: bool) -> dict[str, Any]:
    per_node = options.processes_per_node
    memory = f"{MEMORY_PER_PROCESS_GI * per_node}Gi"
    requests: dict[str, Any] = {"cpu": str(per_node if not gpu else 2 * per_node),
                                "memory": memory}
    limits: dict[str, Any] = {"memory": memory}
    if gpu:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(per_node)
    return {"requests": requests, "limits": limits}


def render_trainjob(job_id: str, options: DistributedOptions, *, namespace: str,
                    worker_id: str, max_restarts: int = 3, gpu: bool = False,
                    image: str | None = None, attempt: int = 0) -> dict[str, Any]:
    """The TrainJob that runs ``job_id`` on ``options.nodes`` pods.

    torchrun reads ``--nnodes``, ``--nproc-per-node``, ``--node-rank`` and the master's
    address from the ``PET_*`` variables the torch plugin sets (setting them here is
    refused by Kubeflow's webhook).
    """
    trainer: dict[str, Any] = {
        "numNodes": options.nodes,
        "numProcPerNode": options.processes_per_node,
        "command": ["python", "-m", "torch.distributed.run",
                    f"--max-restarts={max_restarts}", "-m", "tune.train.distributed.rank", job_id],
        "env": [{"name": "QUANTA_JOB_WORKER_ID", "value": worker_id},
                {"name": "QUANTA_JOB_WORKDIR", "value": POD_WORKDIR}],
        "resourcesPerNode": resources_per_node(options, gpu=gpu),
    }
    if image:
        trainer["image"] = image
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": trainjob_name(job_id, attempt), "namespace": namespace,
                     "labels": {JOB_LABEL: trainjob_name(job_id, attempt),
                                "app.kubernetes.io/part-of": "quanta",
                                "app.kubernetes.io/component": "tune"},
                     "annotations": {JOB_LABEL: job_id}},
        "spec": {"runtimeRef": {"apiGroup": GROUP, "kind": "TrainingRuntime",
                                "name": RUNTIME},
                 "trainer": trainer},
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The TrainJob's ``status.conditions`` entry of type ``kind`` when it is True."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


@dataclass
class Followed:
    job_id: str
    name: str
    reported: set[str] = field(default_factory=set)  # conditions already put in events


class KubernetesDispatcher:
    """Submits queued jobs as TrainJobs and follows them (one loop, no threads).

    ``api`` is a ``kubernetes.client.CustomObjectsApi`` (tests pass a recording fake).
    """

    def __init__(self, registry: Registry, api: Any, *, namespace: str, gpu: bool = False,
                 image: str | None = None, stale_after: float = 60.0) -> None:
        self.registry, self.api, self.namespace = registry, api, namespace
        self.gpu, self.image, self.stale_after = gpu, image, stale_after
        self.worker_id = dispatcher_id(namespace)
        self.followed: dict[str, Followed] = {}
        self._adopt()

    def _adopt(self) -> None:
        """After a restart: follow the TrainJobs of running jobs under our claim again."""
        for job_id in self.registry.jobs.ids_in(JobStatus.RUNNING):
            job = self.registry.jobs.get(job_id)
            names = _submitted(self.registry, job_id)
            if job is not None and job.worker_id == self.worker_id and names:
                self.followed[job_id] = Followed(job_id, names[-1])

    def _options(self, job_id: str) -> DistributedOptions:
        from tune.plan import TrainingPlan

        job = self.registry.jobs.get(job_id)
        assert job is not None
        return TrainingPlan.from_stored(job.method).quanta.distributed

    def submit_next(self) -> str | None:
        """Claim the oldest queued job and create its TrainJob; returns the job id."""
        queue.requeue_stale(self.registry, self.stale_after)
        job_id = queue.claim_next(self.registry, self.worker_id)
        if job_id is None:
            return None
        body = render_trainjob(job_id, self._options(job_id), namespace=self.namespace,
                               worker_id=self.worker_id, gpu=self.gpu, image=self.image,
                               max_restarts=self.registry.settings.tune_max_restarts,
                               attempt=len(_submitted(self.registry, job_id)))
        name = body["metadata"]["name"]
        try:
            self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                     body)
        except Exception as exc:  # the API refused it: the job fails with the reason
            queue.finish(self.registry, job_id, self.worker_id, JobStatus.FAILED,
                         error={"code": "dispatch_failed", "param": None,
                                "message": f"creating TrainJob {name} failed: {exc}"[:1000]})
            return job_id
        trainer = body["spec"]["trainer"]
        self.registry.jobs.add_event(
            job_id, f"Submitted TrainJob {self.namespace}/{name} ({trainer['numNodes']} "
            f"node(s) x {trainer['numProcPerNode']} process(es))",
            data={"trainjob": {"namespace": self.namespace, "name": name}})
        self.followed[job_id] = Followed(job_id, name)
        return job_id

    def follow(self) -> None:
        """One pass over the followed jobs: heartbeat, cancel, conditions."""
        for job_id, followed in list(self.followed.items()):
            pulse = queue.heartbeat(self.registry, job_id, self.worker_id)
            if not pulse.owned:  # rank 0 finished or paused it, or it changed hands
                del self.followed[job_id]
                continue
            if pulse.cancel:
                self._delete(followed.name)
                queue.finish(self.registry, job_id, self.worker_id, JobStatus.CANCELLED)
                del self.followed[job_id]
                continue
            self._report(followed)

    def _report(self, followed: Followed) -> None:
        try:
            obj = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                        PLURAL, followed.name)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                queue.finish(self.registry, followed.job_id, self.worker_id, JobStatus.FAILED,
                             error={"code": "distributed_failed", "param": None,
                                    "message": f"TrainJob {followed.name} was deleted"})
                del self.followed[followed.job_id]
            else:
                log.warning("reading TrainJob %s failed: %s", followed.name, exc)
            return
        for kind in ("Suspended", "Complete", "Failed"):
            cond = condition(obj, kind)
            if cond is not None and kind not in followed.reported:
                followed.reported.add(kind)
                self.registry.jobs.add_event(
                    followed.job_id, f"TrainJob {followed.name}: {kind}"
                    + (f" ({cond.get('reason')}: {cond.get('message')})"
                       if cond.get("message") else ""),
                    level=EventLevel.ERROR if kind == "Failed" else EventLevel.INFO,
                    data={"trainjob_condition": {k: cond.get(k) for k in
                                                 ("type", "reason", "message")}})
        failed, complete = condition(obj, "Failed"), condition(obj, "Complete")
        if failed is not None or complete is not None:
            # rank 0 finishes a job it trained; one still running after its TrainJob ended
            # never will (the pods failed before rank 0 could say why)
            reason = (failed or {}).get("message") or "its pods ended without finishing it"
            queue.finish(self.registry, followed.job_id, self.worker_id, JobStatus.FAILED,
                         error={"code": "distributed_failed", "param": None,
                                "message": f"TrainJob {followed.name}: {reason}"[:1000]})
            del self.followed[followed.job_id]

    def _delete(self, name: str) -> None:
        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                     name, propagation_policy="Foreground")
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise

    def run_forever(self, poll_interval: float = 5.0,
                    should_exit: Any = lambda: False) -> None:
        while not should_exit():
            self.follow()
            if self.submit_next() is None:
                time.sleep(poll_interval)


def custom_objects_api() -> Any:
    """The official client, configured in-cluster (a service account) or from kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()

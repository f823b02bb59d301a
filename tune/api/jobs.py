"""OpenAI's fine-tuning jobs resource: create, list, retrieve, cancel, pause, resume, events,
checkpoints.

Every lookup is scoped to the caller's tenant: another tenant's job raises the same 404
as an id that never existed. Creation checks everything first (request shape, model,
files, formats, integrations, grader) and resolves the typed training plan
(``tune.plan``) the worker will run; the job row and its first events are written in one
transaction, so a rejected request leaves nothing behind. Cancel, pause and resume are
requests written to the job row (``request_*`` below); the worker that runs the job reads
them at its next heartbeat (``tune.train.queue``).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from quanta.models import base_lora_targets, unknown_targets, weight_modules
from quanta.registry import AdapterRecord, FileRecord, JobRecord, Registry, utcnow
from quanta.registry import NotFoundError as RegistryNotFound
from quanta.types import FilePurpose, JobStatus, MethodType
from tune.api import objects
from tune.api.errors import HTTPBadRequest, HTTPConflict, HTTPNotFound, invalid_request
from tune.api.graders import check_grader_models
from tune.api.models import usable_model
from tune.integrations import refusal
from tune.plan import (
    DATASET_FORMATS,
    PlanError,
    StartAdapter,
    TrainingPlan,
    parse_request,
    resolve,
    unservable_targets,
)


class JobsService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _job_file(self, tenant_id: str, file_id: str, param: str,
                  method_type: MethodType) -> FileRecord:
        try:
            row = self.registry.get_file(tenant_id, file_id)
        except RegistryNotFound:
            raise HTTPNotFound(f"No such File object: {file_id}", param=param,
                               code="file_not_found") from None
        if row.purpose != FilePurpose.FINE_TUNE:
            raise HTTPBadRequest(f"File {file_id} has purpose {row.purpose!r}, not "
                                 "'fine-tune'", param=param, code="invalid_file_purpose")
        allowed = DATASET_FORMATS[method_type]
        if row.format not in allowed:
            raise HTTPBadRequest(
                f"File {file_id} is in {row.format!r} format; method '{method_type}' needs "
                f"{' or '.join(allowed)}", param=param, code="invalid_file_format")
        return row

    def _start_model(self, tenant_id: str, model: str) -> tuple[str, AdapterRecord | None]:
        """(base model id, adapter to continue or None) for a job's ``model``."""
        try:
            return usable_model(self.registry, tenant_id, model)
        except RegistryNotFound:
            raise HTTPBadRequest(
                f"Model {model} is not available for fine-tuning or does not exist.",
                param="model", code="model_not_available") from None

    def _check_integrations(self, integrations: list[Any]) -> None:
        for index, integration in enumerate(integrations):
            refused = refusal(integration, self.registry.settings)
            if refused is not None:
                field, reason = refused
                raise HTTPBadRequest(reason, param=f"integrations.{index}.{field}",
                                     code="integration_not_allowed")

    def _check_servable(self, plan: TrainingPlan, base_model: str,
                        start: AdapterRecord | None) -> None:
        """Refuse, before any training, an adapter that could not be trained or served:
        target modules the base model does not have, LoRA on embeddings or the output
        head, or a rank above ``QUANTA_SERVE_MAX_LORA_RANK`` (a continued adapter,
        ``start``, keeps its own targets and rank)."""
        targets = plan.quanta.lora.target_modules or (
            base_lora_targets(self.registry, base_model) if start is None else [])
        modules = weight_modules(self.registry, base_model) if start is None else None
        if modules:  # a base stored without safetensors is checked by the worker instead
            unknown = unknown_targets(modules, targets)
            if unknown:
                raise HTTPBadRequest(
                    f"quanta.lora.target_modules: {', '.join(map(repr, unknown))} names no "
                    f"module of {base_model}", param="quanta.lora.target_modules",
                    code="invalid_value")
        refused = unservable_targets(targets)
        if refused and start is None:
            raise HTTPBadRequest(f"quanta.lora.target_modules: {', '.join(refused)}: the "
                                 "serving engines load LoRA on the attention and MLP "
                                 "projections only, not on embeddings or the output head",
                                 param="quanta.lora.target_modules", code="invalid_value")
        most = self.registry.settings.serve_max_lora_rank
        if start is not None:
            rank, param = (start.config.get("lora") or {}).get("r"), "model"
        else:
            rank, param = plan.quanta.lora.r, "quanta.lora.r"
        if isinstance(rank, int) and rank > most:
            raise HTTPBadRequest(f"{param}: a LoRA rank of {rank} is above what the servers "
                                 f"load ({most}, QUANTA_SERVE_MAX_LORA_RANK); the adapter "
                                 "could not be served", param=param, code="invalid_value")

    def create_job(self, tenant_id: str, body: Any) -> dict[str, Any]:
        try:
            request = parse_request(body)
        except PlanError as exc:
            raise invalid_request(exc.errors(), body=body) from None
        method_type = request.method.type if request.method else MethodType.SUPERVISED
        base_model, start = self._start_model(tenant_id, request.model)
        train_file = self._job_file(tenant_id, request.training_file, "training_file",
                                    method_type)
        if request.validation_file:
            self._job_file(tenant_id, request.validation_file, "validation_file", method_type)
        try:
            plan = resolve(request, train_file.records or 1,
                           StartAdapter(id=start.id, name=start.name) if start else None)
        except PlanError as exc:
            raise invalid_request(exc.errors()) from None
        self._check_integrations(request.integrations or [])
        self._check_servable(plan, base_model, start)
        if plan.grader is not None:
            check_grader_models(self.registry, tenant_id, plan.grader,
                                "method.reinforcement.grader")
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        validating = f"Validating training file: {request.training_file}" + (
            f" and validation file: {request.validation_file}" if request.validation_file else "")
        job = self.registry.jobs.create(
            ["Created fine-tuning job", validating, *plan.notes(),
             "Files validated, moving job to queued state"],
            tenant_id=tenant_id, model=base_model, training_file_id=request.training_file,
            validation_file_id=request.validation_file, suffix=request.suffix, seed=seed,
            method=plan.stored(), job_metadata=request.metadata,
            integrations=[i.model_dump(mode="json")
                          for i in request.integrations or []] or None,
            status=JobStatus.QUEUED)
        return objects.job_object(job)

    def _job(self, tenant_id: str, job_id: str) -> JobRecord:
        try:
            return self.registry.jobs.owned(tenant_id, job_id)
        except RegistryNotFound as exc:
            raise HTTPNotFound(str(exc), param="fine_tuning_job_id") from None

    def get_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        return objects.job_object(job, self._estimated_finish(job))

    def list_jobs(self, tenant_id: str, after: str | None = None, limit: int | None = None,
                  metadata: dict[str, str] | None = None) -> dict[str, Any]:
        rows = self.registry.jobs.for_tenant(tenant_id)
        if metadata:
            rows = [r for r in rows if r.has_metadata(metadata)]
        rows, more = objects.page_after(rows, after, objects.page_limit(limit, 20))
        return objects.page([objects.job_object(r) for r in rows], more)

    def cancel_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        if JobStatus(job.status).is_terminal:
            raise HTTPConflict(f"Job {job_id} has already {job.status}; it cannot be cancelled",
                               param="fine_tuning_job_id", code="job_not_cancellable")
        return objects.job_object(request_cancel(self.registry, job_id))

    def pause_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        """A queued job pauses at once; a running one at its next step, after a checkpoint."""
        job = self._job(tenant_id, job_id)
        paused = request_pause(self.registry, job_id)
        if paused is None:
            state = (f"has {job.status}" if JobStatus(job.status).is_terminal else
                     "is being cancelled" if job.cancel_requested else
                     "is already pausing" if job.pause_requested else f"is {job.status}")
            raise HTTPBadRequest(f"Job {job_id} {state}; it cannot be paused",
                                 param="fine_tuning_job_id", code="job_not_pausable")
        return objects.job_object(paused)

    def resume_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        """A paused job is queued again and continues from its last checkpoint."""
        job = self._job(tenant_id, job_id)
        resumed = request_resume(self.registry, job_id)
        if resumed is None:
            raise HTTPBadRequest(f"Job {job_id} is {job.status}, not paused; only a paused "
                                 "job can be resumed", param="fine_tuning_job_id",
                                 code="job_not_paused")
        return objects.job_object(resumed)

    def list_events(self, tenant_id: str, job_id: str, after: str | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        self._job(tenant_id, job_id)
        limit = objects.page_limit(limit, 20)
        try:
            rows = self.registry.jobs.events(job_id, before=after, limit=limit + 1)
        except RegistryNotFound as exc:
            raise HTTPNotFound(str(exc), param="after") from None
        return objects.page([objects.event_object(r) for r in rows[:limit]], len(rows) > limit)

    def list_checkpoints(self, tenant_id: str, job_id: str, after: str | None = None,
                         limit: int | None = None) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        rows, more = objects.page_after(self.registry.jobs.checkpoints(job_id), after,
                                        objects.page_limit(limit, 10))
        return objects.page([objects.checkpoint_object(r, job) for r in rows], more)

    def _estimated_finish(self, job: JobRecord) -> int | None:
        """Start time + elapsed / steps done * total steps, from the newest metrics event."""
        if job.status != JobStatus.RUNNING or job.started_at is None:
            return None
        data = self.registry.jobs.latest_metrics(job.id)
        if not data or not data.get("total_steps") or not data.get("step"):
            return None
        started = objects.unix(job.started_at) or 0
        elapsed = max(0, int(time.time()) - started)
        return started + int(elapsed / data["step"] * data["total_steps"])

    def job_counts(self) -> dict[JobStatus, int]:
        return self.registry.jobs.status_counts()


# -- what the job's owner asks of it: written to the row, read by its worker's heartbeat --

def request_pause(registry: Registry, job_id: str) -> JobRecord | None:
    """Pause a job: a queued one at once, a running one at its next step boundary (its
    worker writes a checkpoint first). None if the job is in no state to pause."""
    with registry.jobs.transaction() as tx:
        for waiting in (JobStatus.VALIDATING_FILES, JobStatus.QUEUED):
            if tx.set_if(job_id, {"status": waiting}, status=JobStatus.PAUSED):
                tx.add_event(job_id, "Fine-tuning job paused before training",
                             data={"paused_at_step": 0})
                return tx.get(job_id)
        if tx.set_if(job_id, {"status": JobStatus.RUNNING, "pause_requested": False,
                              "cancel_requested": False}, pause_requested=True):
            tx.add_event(job_id, "Pause requested; the job pauses at its next step")
            return tx.get(job_id)
        return None


def request_resume(registry: Registry, job_id: str) -> JobRecord | None:
    """Queue a paused job again (any worker resumes it from its last checkpoint), or
    withdraw a pause not yet taken; None if the job is not paused or pausing."""
    with registry.jobs.transaction() as tx:
        if tx.set_if(job_id, {"status": JobStatus.PAUSED}, status=JobStatus.QUEUED):
            tx.add_event(job_id, "Fine-tuning job resumed; queued to continue from its last "
                         "checkpoint")
            return tx.get(job_id)
        if tx.set_if(job_id, {"status": JobStatus.RUNNING, "pause_requested": True},
                     pause_requested=False):
            tx.add_event(job_id, "Pause withdrawn; the job keeps running")
            return tx.get(job_id)
        return None


def request_cancel(registry: Registry, job_id: str) -> JobRecord:
    """Cancel a job: queued jobs stop at once, running ones at their worker's next poll."""
    with registry.jobs.transaction() as tx:
        for waiting in (JobStatus.VALIDATING_FILES, JobStatus.QUEUED, JobStatus.PAUSED):
            if tx.set_if(job_id, {"status": waiting}, status=JobStatus.CANCELLED,
                         cancel_requested=True, finished_at=utcnow()):
                tx.add_event(job_id, "Fine-tuning job cancelled")
                break
        else:
            if tx.set_if(job_id, {"status": JobStatus.RUNNING}, cancel_requested=True):
                tx.add_event(job_id, "Cancellation requested")
        job = tx.get(job_id)
        assert job is not None
        return job

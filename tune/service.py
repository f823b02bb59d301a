"""The tune service's logic, independent of HTTP: files, jobs, events, checkpoints.

Every lookup is scoped to the caller's tenant: another tenant's file or job raises the
same 404 as an id that never existed. Job creation checks everything first
(request shape, model, files, formats) and writes the job row and its first events in
one transaction, so a rejected request leaves nothing behind.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from quanta.registry import AdapterRecord, FileRecord, JobRecord, Registry
from quanta.registry import NotFoundError as RegistryNotFound
from quanta.types import ArtifactKind, FilePurpose, JobStatus, MethodType
from tune import objects, queue
from tune.datafiles import validate_upload
from tune.errors import HTTPBadRequest, HTTPConflict, HTTPNotFound
from tune.methods import method_formats
from tune.spec import StartAdapter, parse_request, resolve

MAX_PAGE = 100  # jobs, events, checkpoints
MAX_FILES_PAGE = 10_000  # OpenAI's range and default for files


def safe_filename(name: str) -> str:
    """The uploaded name as metadata only: no directories, dots-only or control characters."""
    name = "".join(c for c in name.replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable())
    name = name.strip()[:255]
    return name if name.strip(".") else "upload.jsonl"


def page_limit(limit: int | None, default: int, most: int = MAX_PAGE) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= most:
        raise HTTPBadRequest(f"limit must be between 1 and {most}", param="limit",
                             code="invalid_value")
    return limit


def page_after(rows: list[Any], after: str | None, limit: int) -> tuple[list[Any], bool]:
    """Rows following the one whose id is ``after`` (newest-first order), one page."""
    if after is not None:
        ids = [r.id for r in rows]
        if after not in ids:
            raise HTTPNotFound(f"No such object: {after}", param="after")
        rows = rows[ids.index(after) + 1:]
    return rows[:limit], len(rows) > limit


class TuneService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # -- files -----------------------------------------------------------------------------

    def create_file(self, tenant_id: str, filename: str | None, purpose: str | None,
                    path: Path, limit: int | None = None) -> dict[str, Any]:
        """Validate an uploaded dataset (already on disk) and store it (``limit``: its
        size limit, when it came in parts)."""
        accepted = [str(p) for p in FilePurpose if p.uploadable]
        if purpose not in accepted:
            raise HTTPBadRequest(f"Invalid purpose {purpose!r}: Quanta accepts "
                                 f"{', '.join(repr(p) for p in accepted)}",
                                 param="purpose", code="invalid_value")
        if not filename:
            raise HTTPBadRequest("Missing file part 'file'", param="file")
        filename = safe_filename(filename)
        report = validate_upload(path, filename)
        if not report.ok:
            shown = "; ".join(report.errors[:5])
            more = f" (and {len(report.errors) - 5} more)" if len(report.errors) > 5 else ""
            raise HTTPBadRequest(f"Invalid file format for fine-tuning: {shown}{more}",
                                      param="file", code="invalid_file_format")
        row = self.registry.add_file(tenant_id, filename, FilePurpose(purpose), path,
                                     format=report.format, records=report.records,
                                     limit=limit)
        return objects.file_object(row)

    def _file(self, tenant_id: str, file_id: str) -> FileRecord:
        try:
            return self.registry.get_file(tenant_id, file_id)
        except RegistryNotFound:
            raise HTTPNotFound(f"No such File object: {file_id}", param="id") from None

    def get_file(self, tenant_id: str, file_id: str) -> dict[str, Any]:
        return objects.file_object(self._file(tenant_id, file_id))

    def file_path(self, tenant_id: str, file_id: str) -> tuple[FileRecord, Path]:
        row = self._file(tenant_id, file_id)
        return row, self.registry.blob_path(row.sha256)

    def list_files(self, tenant_id: str, purpose: str | None = None, after: str | None = None,
                   limit: int | None = None, order: str = "desc") -> dict[str, Any]:
        """The tenant's files, newest first (``order="asc"``: oldest first)."""
        if order not in ("asc", "desc"):
            raise HTTPBadRequest("order must be 'asc' or 'desc'", param="order",
                                 code="invalid_value")
        rows = [r for r in self.registry.list_files(tenant_id)
                if purpose is None or r.purpose == purpose]
        if order == "asc":
            rows.reverse()
        rows, more = page_after(rows, after, page_limit(limit, MAX_FILES_PAGE, MAX_FILES_PAGE))
        listing = objects.page([objects.file_object(r) for r in rows], more)
        # OpenAI's file list types first_id and last_id as strings, required: "" when empty.
        return {**listing, "first_id": listing.get("first_id", ""),
                "last_id": listing.get("last_id", "")}

    def delete_file(self, tenant_id: str, file_id: str) -> dict[str, Any]:
        self._file(tenant_id, file_id)
        used = self.registry.jobs.using_file(file_id)
        if used:
            raise HTTPConflict(f"File {file_id} is used by fine-tuning job {used}", param="id",
                                code="file_in_use")
        self.registry.delete(ArtifactKind.FILE, file_id, tenant_id)
        return {"id": file_id, "object": "file", "deleted": True}

    # -- jobs ------------------------------------------------------------------------------

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
        allowed = method_formats(method_type)
        if row.format not in allowed:
            raise HTTPBadRequest(
                f"File {file_id} is in {row.format!r} format; method '{method_type}' needs "
                f"{' or '.join(allowed)}", param=param, code="invalid_file_format")
        return row

    def _usable_model(self, tenant_id: str, model: str, *, shared: bool = True
                      ) -> tuple[str, AdapterRecord | None]:
        """(base model id, adapter or None) for a base model or a fine-tuned model the
        tenant may use (its own, or with ``shared`` one shared with it); RegistryNotFound
        for anything else."""
        try:
            return self.registry.get_base_model(model, tenant_id).id, None
        except RegistryNotFound:
            adapter = (self.registry.usable_adapter(tenant_id, model) if shared
                       else self.registry.resolve_adapter(tenant_id, model))
            return adapter.base_model_id, adapter

    def _start_model(self, tenant_id: str, model: str) -> tuple[str, StartAdapter | None]:
        """(base model id, adapter to continue) for a job's ``model``."""
        try:
            base, adapter = self._usable_model(tenant_id, model)
        except RegistryNotFound:
            raise HTTPBadRequest(
                f"Model {model} is not available for fine-tuning or does not exist.",
                param="model", code="model_not_available") from None
        return base, StartAdapter(id=adapter.id, name=adapter.name) if adapter else None

    def _check_integrations(self, integrations: list[Any]) -> None:
        from tune.tracking.config import refusal

        for index, integration in enumerate(integrations):
            refused = refusal(integration, self.registry.settings)
            if refused is not None:
                field, reason = refused
                raise HTTPBadRequest(reason, param=f"integrations.{index}.{field}",
                                     code="integration_not_allowed")

    def _check_servable(self, tenant_id: str, plan: Any) -> None:
        """Refuse, before any training, an adapter the servers could not load: LoRA on
        embeddings or the output head, or a rank above ``QUANTA_SERVE_MAX_LORA_RANK`` (a
        continued adapter keeps its own rank)."""
        from tune.spec import unservable_targets

        refused = unservable_targets(plan.quanta.lora.target_modules)
        if refused and plan.start_adapter is None:
            raise HTTPBadRequest(f"quanta.lora.target_modules: {', '.join(refused)}: the "
                                 "serving engines load LoRA on the attention and MLP "
                                 "projections only, not on embeddings or the output head",
                                 param="quanta.lora.target_modules", code="invalid_value")
        most = self.registry.settings.serve_max_lora_rank
        if plan.start_adapter is not None:
            start = self.registry.usable_adapter(tenant_id, plan.start_adapter.id)
            rank, param = (start.config.get("lora") or {}).get("r"), "model"
        else:
            rank, param = plan.quanta.lora.r, "quanta.lora.r"
        if isinstance(rank, int) and rank > most:
            raise HTTPBadRequest(f"{param}: a LoRA rank of {rank} is above what the servers "
                                 f"load ({most}, QUANTA_SERVE_MAX_LORA_RANK); the adapter "
                                 "could not be served", param=param, code="invalid_value")

    def check_grader_models(self, tenant_id: str, grader: Any, param: str) -> None:
        """A score_model grader may ask a base model or one of the tenant's own adapters."""
        from tune.graders import score_models_of

        for model in score_models_of(grader):
            try:
                self._usable_model(tenant_id, model, shared=False)
            except RegistryNotFound:
                raise HTTPBadRequest(f"The grader's model {model} does not exist or is not "
                                     "yours", param=param, code="model_not_available") from None

    def create_job(self, tenant_id: str, body: Any) -> dict[str, Any]:
        request = parse_request(body)
        method_type = request.method.type if request.method else MethodType.SUPERVISED
        base_model, start_adapter = self._start_model(tenant_id, request.model)
        train_file = self._job_file(tenant_id, request.training_file, "training_file",
                                    method_type)
        if request.validation_file:
            self._job_file(tenant_id, request.validation_file, "validation_file", method_type)
        plan = resolve(request, train_file.records or 1, start_adapter)
        self._check_integrations(request.integrations or [])
        self._check_servable(tenant_id, plan)
        if plan.grader is not None:
            self.check_grader_models(tenant_id, plan.grader, "method.reinforcement.grader")
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
        rows, more = page_after(rows, after, page_limit(limit, 20))
        return objects.page([objects.job_object(r) for r in rows], more)

    def cancel_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        if JobStatus(job.status).is_terminal:
            raise HTTPConflict(f"Job {job_id} has already {job.status}; it cannot be cancelled",
                                param="fine_tuning_job_id", code="job_not_cancellable")
        return objects.job_object(queue.request_cancel(self.registry, job_id))

    def pause_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        """A queued job pauses at once; a running one at its next step, after a checkpoint."""
        job = self._job(tenant_id, job_id)
        paused = queue.request_pause(self.registry, job_id)
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
        resumed = queue.request_resume(self.registry, job_id)
        if resumed is None:
            raise HTTPBadRequest(f"Job {job_id} is {job.status}, not paused; only a paused "
                                 "job can be resumed", param="fine_tuning_job_id",
                                 code="job_not_paused")
        return objects.job_object(resumed)

    def list_events(self, tenant_id: str, job_id: str, after: str | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        self._job(tenant_id, job_id)
        limit = page_limit(limit, 20)
        try:
            rows = self.registry.jobs.events(job_id, before=after, limit=limit + 1)
        except RegistryNotFound as exc:
            raise HTTPNotFound(str(exc), param="after") from None
        return objects.page([objects.event_object(r) for r in rows[:limit]], len(rows) > limit)

    def list_checkpoints(self, tenant_id: str, job_id: str, after: str | None = None,
                         limit: int | None = None) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        rows, more = page_after(self.registry.jobs.checkpoints(job_id), after,
                                page_limit(limit, 10))
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

    # -- graders ---------------------------------------------------------------------------

    def _grader_request(self, tenant_id: str, model: type[Any], body: Any) -> Any:
        """A graders/run or /validate body, checked: shape, templates, the models it asks."""
        from pydantic import ValidationError

        from tune.errors import invalid_request
        from tune.graders import check_templates
        from tune.graders.templates import TemplateError

        try:
            request = model.model_validate(body)
            check_templates(request.grader)
        except ValidationError as exc:
            raise invalid_request(exc.errors()) from None
        except TemplateError as exc:
            raise HTTPBadRequest(str(exc), param="grader", code="invalid_value") from None
        self.check_grader_models(tenant_id, request.grader, "grader")
        return request

    def validate_grader(self, tenant_id: str, body: Any) -> dict[str, Any]:
        from tune.graders.config import ValidateRequest

        request = self._grader_request(tenant_id, ValidateRequest, body)
        return {"grader": request.grader.model_dump(mode="json", exclude_none=True)}

    def run_grader(self, tenant_id: str, body: Any) -> dict[str, Any]:
        """Grade one sample, as a job would (a python grader runs in the sandbox)."""
        from tune.graders import run_grader
        from tune.graders.config import RunRequest

        request = self._grader_request(tenant_id, RunRequest, body)
        return run_grader(request.grader, request.model_sample, request.item)

    # -- metrics ---------------------------------------------------------------------------

    def job_counts(self) -> dict[JobStatus, int]:
        return self.registry.jobs.status_counts()

"""Models as the tune API shows them: OpenAI's ``/v1/models`` (list, retrieve, delete a
fine-tuned model) and Quanta's ``/v1/quanta/...`` extensions the console reads: a
model's lineage, evaluation and exports, requesting an export (an export job a quantize
worker runs: this process never builds one), the registry's health.

Everything is one tenant's view: its own fine-tuned models (checkpoint models too) and
the base models it may train; another tenant's model answers 404, as an unknown one.
Each model says which servers serve it (``served_by``: the live ``quanta serve``
processes of its base the registry knows; one server serves one base), an extra field
OpenAI's model object allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from quanta.registry import (
    AdapterRecord,
    BaseModelRecord,
    ExportJobRecord,
    ExportRecord,
    NotFoundError,
    Registry,
    ServeEndpointRecord,
)
from quanta.types import ArtifactKind, ExportFormat, JobStatus
from tune.api.errors import HTTPBadRequest, HTTPNotFound, HTTPTooManyRequests
from tune.api.objects import unix

MAX_EXPORT_ACCURACY_N = 200
# Export jobs one tenant may have queued or running at once (a worker runs one at a time).
MAX_PENDING_EXPORTS = 4


def model_object(row: AdapterRecord | BaseModelRecord) -> dict[str, Any]:
    """OpenAI's ``model`` object."""
    if isinstance(row, AdapterRecord):
        return {"id": row.name, "object": "model", "created": unix(row.created_at),
                "owned_by": row.tenant_id}
    return {"id": row.id, "object": "model", "created": unix(row.created_at),
            "owned_by": row.tenant_id or "quanta", "base": base_summary(row)}


# What a base model's entry shows of its record (quanta.base_info), beside OpenAI's fields.
BASE_SUMMARY = ("architecture", "parameters", "vocab_size", "context_length",
                "tie_word_embeddings", "lora_target_modules", "engines")


def base_summary(row: BaseModelRecord) -> dict[str, Any]:
    """A base's record as the API shows it: size, vocabulary, context, chat template,
    LoRA targets, the engines that can serve it and its licence."""
    info = row.info or {}
    summary = {key: info.get(key) for key in BASE_SUMMARY}
    summary["architecture"] = row.architecture
    template = info.get("chat_template") or {}
    summary["chat_template"] = {k: template.get(k) for k in ("format", "source")}
    license = info.get("license") or {}
    summary["license"] = {k: license.get(k) for k in ("name", "url", "gated", "accepted_at")
                          if k in license} or None
    return summary


def served_by(endpoints: Iterable[ServeEndpointRecord]) -> list[dict[str, Any]]:
    """The servers of one base as clients reach them: one entry per URL (replicas behind
    one Service or gateway are one entry), with its latest heartbeat."""
    entries: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        seen = unix(e.last_seen)
        if e.url not in entries or (seen or 0) > entries[e.url]["last_seen"]:
            entries[e.url] = {"url": e.url, "engine": e.engine, "grpc": e.grpc,
                              "last_seen": seen}
    return sorted(entries.values(), key=lambda entry: entry["url"])


def base_of(row: AdapterRecord | BaseModelRecord) -> str:
    return row.base_model_id if isinstance(row, AdapterRecord) else row.id


def export_object(registry: Registry, row: ExportRecord) -> dict[str, Any]:
    return {"id": row.id, "object": "quanta.export", "name": registry.export_name(row),
            "format": row.format, "bytes": row.bytes, "created_at": unix(row.created_at),
            "metrics": row.metrics or {}}


def export_job_object(registry: Registry, job: ExportJobRecord) -> dict[str, Any]:
    """An export job as the API shows it (its export, once it succeeded)."""
    export = None
    if job.export_id is not None:
        try:
            export = export_object(registry, registry.get_row(ArtifactKind.EXPORT,
                                                              job.export_id))
        except NotFoundError:  # deleted since (with its adapter, say)
            export = None
    return {"id": job.id, "object": "quanta.export_job", "model": job.model,
            "format": job.format, "accuracy_n": job.accuracy_n, "status": job.status,
            "created_at": unix(job.created_at), "started_at": unix(job.started_at),
            "finished_at": unix(job.finished_at), "error": job.error, "export": export,
            "events": job.events}


def usable_model(registry: Registry, tenant_id: str, model: str, *, shared: bool = True
                 ) -> tuple[str, AdapterRecord | None]:
    """(base model id, adapter or None) for a model a tenant may name (a job's ``model``, a
    grader's): a base model, or a fine-tuned model of its own or, with ``shared``, one
    shared with it. NotFoundError for anything else."""
    try:
        return registry.get_base_model(model, tenant_id).id, None
    except NotFoundError:
        adapter = (registry.usable_adapter(tenant_id, model) if shared
                   else registry.resolve_adapter(tenant_id, model))
        return adapter.base_model_id, adapter


class ModelsService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _adapter(self, tenant_id: str, model: str) -> AdapterRecord:
        try:
            return self.registry.resolve_adapter(tenant_id, model)
        except NotFoundError:
            raise HTTPNotFound(f"The model '{model}' does not exist", param="model",
                               code="model_not_found") from None

    def _served_by(self, base_model_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Base model id -> its live servers (one base's, or every base's: one query)."""
        endpoints: dict[str, list[ServeEndpointRecord]] = {}
        for e in self.registry.serve_endpoints.live(base_model_id):
            endpoints.setdefault(e.base_model_id, []).append(e)
        return {base: served_by(rows) for base, rows in endpoints.items()}

    def _model(self, row: AdapterRecord | BaseModelRecord,
               serving: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        """OpenAI's model object with the servers that serve it."""
        return {**model_object(row), "served_by": serving.get(base_of(row), [])}

    def list_models(self, tenant_id: str) -> dict[str, Any]:
        bases = self.registry.list_base_models(tenant_id)
        adapters = self.registry.list_adapters(tenant_id, checkpoints=True)
        serving = self._served_by()
        return {"object": "list", "data": [self._model(r, serving)
                                           for r in [*bases, *adapters]]}

    def get_model(self, tenant_id: str, model: str) -> dict[str, Any]:
        row = self._model_row(tenant_id, model)
        return self._model(row, self._served_by(base_of(row)))

    def _model_row(self, tenant_id: str, model: str) -> AdapterRecord | BaseModelRecord:
        """A base model the tenant may use, or one of its fine-tuned models (404 else)."""
        try:
            return self.registry.get_base_model(model, tenant_id)
        except NotFoundError:
            return self._adapter(tenant_id, model)

    def delete_model(self, tenant_id: str, model: str) -> dict[str, Any]:
        """OpenAI's delete of a fine-tuned model (base models are not the tenant's)."""
        row = self._adapter(tenant_id, model)
        self.registry.delete(ArtifactKind.ADAPTER, row.id, tenant_id)
        return {"id": row.name, "object": "model", "deleted": True}

    def details(self, tenant_id: str, model: str) -> dict[str, Any]:
        """A fine-tuned model's lineage (base, training file, job), its configuration, its
        evaluation before and after training (with sample answers), its exports and the
        servers that serve it; for a base model, what it is and its servers."""
        row = self._model_row(tenant_id, model)
        serving = self._model(row, self._served_by(base_of(row)))
        if isinstance(row, BaseModelRecord):
            return {**serving, "object": "quanta.model", "base_model": None,
                    "architecture": row.architecture, "bytes": row.bytes,
                    "sha256": row.sha256}
        exports = [export_object(self.registry, e) for e in self.registry.list_exports(tenant_id)
                   if e.adapter_id == row.id]
        return {**serving, "object": "quanta.model", "alias": row.alias,
                "base_model": row.base_model_id, "training_file": row.training_file_id,
                "job": row.job_id, "bytes": row.bytes, "sha256": row.sha256,
                "config": row.config or {}, "eval": row.eval or {}, "pinned": row.pinned,
                "exports": exports}

    def set_pinned(self, tenant_id: str, model: str, pinned: bool) -> dict[str, Any]:
        """Pin (or unpin) a fine-tuned model in its base's serving engines (owner only)."""
        row = self.registry.set_pinned(tenant_id, self._adapter(tenant_id, model).id, pinned)
        return {**model_object(row), "pinned": row.pinned}

    def create_export(self, tenant_id: str, model: str, body: Any) -> dict[str, Any]:
        """Queue an export of the tenant's model for a quantize worker (``quanta exports
        worker``); the answer is the export job, followed with :meth:`get_export_job`."""
        if not isinstance(body, dict) or not isinstance(body.get("format"), str):
            raise HTTPBadRequest("format is required", param="format")
        try:
            format = ExportFormat(body["format"])
        except ValueError:
            raise HTTPBadRequest(f"format must be one of {', '.join(ExportFormat)}",
                                 param="format") from None
        accuracy_n = body.get("accuracy_n")
        if accuracy_n is not None and (isinstance(accuracy_n, bool) or not isinstance(
                accuracy_n, int) or not 1 <= accuracy_n <= MAX_EXPORT_ACCURACY_N):
            raise HTTPBadRequest(f"accuracy_n must be an integer between 1 and "
                                 f"{MAX_EXPORT_ACCURACY_N}", param="accuracy_n")
        row = self._adapter(tenant_id, model)
        pending = [j for j in self.registry.export_jobs.for_tenant(tenant_id)
                   if j.status in (JobStatus.QUEUED, JobStatus.RUNNING)]
        if len(pending) >= MAX_PENDING_EXPORTS:
            raise HTTPTooManyRequests(f"{len(pending)} of your exports are queued or running; "
                                      "try again when one has finished", retry_after=30,
                                      code="export_busy")
        job = self.registry.export_jobs.create(tenant_id=tenant_id, model=row.name,
                                               format=format, accuracy_n=accuracy_n)
        return export_job_object(self.registry, job)

    def _export_job(self, tenant_id: str, job_id: str) -> ExportJobRecord:
        try:
            return self.registry.export_jobs.owned(tenant_id, job_id)
        except NotFoundError:
            raise HTTPNotFound(f"No such export job: {job_id}", param="export_job_id") from None

    def get_export_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        return export_job_object(self.registry, self._export_job(tenant_id, job_id))

    def list_export_jobs(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's export jobs, newest first."""
        return {"object": "list", "data": [export_job_object(self.registry, job)
                                           for job in self.registry.export_jobs.for_tenant(
                                               tenant_id)]}

    def cancel_export_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        """Cancel a queued export now, a running one at its worker's next heartbeat."""
        self._export_job(tenant_id, job_id)
        return export_job_object(self.registry,
                                 self.registry.export_jobs.request_cancel(tenant_id, job_id))

    def export_file(self, tenant_id: str, export_id: str) -> tuple[Path, str]:
        """A single-file export (a GGUF) of one of the tenant's models: a verified local
        copy and the file name to download it as."""
        try:
            row = self.registry.get_row(ArtifactKind.EXPORT, export_id)
        except NotFoundError:
            row = None
        if row is None or row.tenant_id != tenant_id:
            raise HTTPNotFound(f"No such export: {export_id}", param="export_id")
        if self.registry.is_tree(row.sha256):
            raise HTTPBadRequest(f"A {row.format} export is a directory, not one file: "
                                 "materialise it with `quanta registry show`",
                                 param="export_id", code="not_a_file")
        return self.registry.blob_path(row.sha256, ".gguf"), f"{export_id}-{row.format}.gguf"

    def registry_health(self, tenant_id: str) -> dict[str, Any]:
        """The counts of the latest ``quanta registry verify`` (run by the operator, from
        cron say; never re-run per request: it re-hashes every tenant's blobs), the
        storage this tenant's files, models and exports use, and whether python graders
        can run here (a probe, remembered for a minute)."""
        used = {"files": sum(r.bytes for r in self.registry.list_files(tenant_id)),
                "models": sum(r.bytes for r in self.registry.list_adapters(
                    tenant_id, checkpoints=True)),
                "exports": sum(r.bytes for r in self.registry.list_exports(tenant_id)
                               if r.tenant_id == tenant_id)}
        from tune.graders.sandbox import probe_sandbox

        problem = probe_sandbox(self.registry.settings.grader_python)
        sandbox = ({"status": "ok", "reason": None} if problem is None
                   else {"status": "sandbox_unavailable", "reason": problem})
        return {"object": "quanta.registry_health", "verify": self.registry.last_verify(),
                "storage_bytes": {**used, "total": sum(used.values())},
                "grader_sandbox": sandbox}

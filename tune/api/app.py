"""The tune HTTP API: OpenAI's files and fine-tuning routes, thin over one service per
resource (``files``, ``uploads``, ``jobs``, ``graders``, ``sharing``, ``models``, ``evals``).

Every route authenticates (``Authorization: Bearer``) and acts as the key's tenant; errors
are mapped to OpenAI-style bodies in ``tune.api.errors``. ``/metrics`` exposes job gauges for
Prometheus, read from the registry on each scrape (so any number of API replicas agree).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from quanta.config import Settings, get_settings
from quanta.data.reader import loads
from quanta.data.text import find_not_text
from quanta.registry import Registry
from quanta.tenancy import Principal, authenticate, bearer_token, check_metrics_token
from quanta.types import JobStatus
from tune.api.batches import BatchesService
from tune.api.errors import HTTPBadRequest, HTTPNotFound, HTTPPayloadTooLarge, install_handlers
from tune.api.evals import EvalsService
from tune.api.files import FilesService
from tune.api.graders import GradersService
from tune.api.jobs import JobsService
from tune.api.models import ModelsService
from tune.api.multipart import read_form
from tune.api.objects import FineTuningJob
from tune.api.sharing import SharingService
from tune.api.uploads import MAX_PART_BYTES, UploadService


def _principal(request: Request) -> Principal:
    """The caller's tenant, from ``Authorization: Bearer <key>`` (AuthError -> 401)."""
    registry = request.app.state.registry
    return authenticate(registry, bearer_token(_authorization(request)))


def _authorization(request: Request) -> str | None:
    """The one ``Authorization`` header; several are refused (which counts is ambiguous)."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise HTTPBadRequest("Send one Authorization header, not several",
                             code="invalid_authorization")
    return values[0] if values else None


async def _json_body(request: Request) -> Any:
    """The request's JSON body: at most ``QUANTA_MAX_JSON_BYTES`` (413, read no further),
    sent as JSON (400 for another content type), parsed with bounded nesting and number
    length, and text in every string (400 naming the field: a lone surrogate stored
    would fail every response that echoes it)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise HTTPBadRequest(f"Send the request body as application/json, not {media}",
                             code="unsupported_content_type")
    limit = request.app.state.registry.settings.max_json_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    try:
        value = loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:  # too deep or too long numbers too
        raise HTTPBadRequest(f"The request body is not valid JSON: {exc}",
                             code="invalid_json") from None
    not_text = find_not_text(value)
    if not_text is not None:
        field, problem = not_text
        raise HTTPBadRequest(f"{field or 'The request body'} {problem}: send text",
                             param=field or None, code="invalid_value")
    return value


def _too_large(limit: int) -> HTTPPayloadTooLarge:
    return HTTPPayloadTooLarge(f"The request body is over {limit} bytes "
                               "(QUANTA_MAX_JSON_BYTES)", code="request_too_large")


Caller = Annotated[Principal, Depends(_principal)]
Body = Annotated[Any, Depends(_json_body)]
# Ranges are checked by the service (a 400 naming ``limit``), not by FastAPI (a 422).
Limit = Annotated[int | None, Query()]
Order = Annotated[str, Query()]


def _metrics_registry(service: JobsService) -> Any:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    class JobCollector:
        def collect(self) -> Any:
            counts = service.job_counts()
            jobs = GaugeMetricFamily("quanta_tune_jobs", "Fine-tuning jobs by status",
                                     labels=["status"])
            for status, count in counts.items():
                jobs.add_metric([status], count)
            yield jobs
            yield GaugeMetricFamily("quanta_tune_jobs_queued", "Fine-tuning jobs waiting "
                                    "for a worker", value=counts.get(JobStatus.QUEUED, 0))

    registry = CollectorRegistry()
    registry.register(JobCollector())
    return registry


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    """The ASGI app; ``registry`` defaults to the one ``settings`` (or the env) describes."""
    settings = settings or get_settings()
    registry = registry or Registry.open(settings)
    files, jobs, graders = FilesService(registry), JobsService(registry), GradersService(registry)
    upload_service = UploadService(registry, files)
    sharing = SharingService(registry)
    models = ModelsService(registry)
    evals = EvalsService(registry)
    batches = BatchesService(registry)
    uploads = registry.sweep_uploads()  # a killed API's partial uploads
    metrics_registry = _metrics_registry(jobs)
    app = FastAPI(title="Quanta tune", version="1", docs_url="/docs")
    app.state.registry = registry
    install_handlers(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        check_metrics_token(registry.settings, _authorization(request))
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    # -- files -----------------------------------------------------------------------------

    @app.post("/v1/files")
    async def create_file(request: Request, caller: Caller) -> dict[str, Any]:
        upload = await read_form(request, registry.settings.max_upload_bytes, uploads)
        try:
            return files.create_file(caller.tenant_id, upload.filename,
                                       upload.fields.get("purpose"), upload.path or Path())
        finally:
            upload.discard()

    @app.get("/v1/files")
    def list_files(caller: Caller, purpose: str | None = None, after: str | None = None,
                   limit: Limit = None, order: Order = "desc") -> dict[str, Any]:
        return files.list_files(caller.tenant_id, purpose, after, limit, order)

    @app.get("/v1/files/{file_id}")
    def get_file(file_id: str, caller: Caller) -> dict[str, Any]:
        return files.get_file(caller.tenant_id, file_id)

    @app.get("/v1/files/{file_id}/content")
    def file_content(file_id: str, caller: Caller) -> FileResponse:
        row, path = files.file_path(caller.tenant_id, file_id)
        return FileResponse(path, media_type="application/octet-stream", filename=row.filename)

    @app.delete("/v1/files/{file_id}")
    def delete_file(file_id: str, caller: Caller) -> dict[str, Any]:
        return files.delete_file(caller.tenant_id, file_id)

    # -- sharing fine-tuned models with other tenants ---------------------------------------

    @app.post("/v1/fine_tuning/checkpoints/{model}/permissions")
    def create_permissions(model: str, caller: Caller, body: Body) -> dict[str, Any]:
        return sharing.create(caller.tenant_id, model, body)

    @app.get("/v1/fine_tuning/checkpoints/{model}/permissions")
    def list_permissions(model: str, caller: Caller, project_id: str | None = None,
                         after: str | None = None, limit: Limit = None,
                         order: Order = "descending") -> dict[str, Any]:
        return sharing.list(caller.tenant_id, model, project_id, after, limit, order)

    @app.delete("/v1/fine_tuning/checkpoints/{model}/permissions/{permission_id}")
    def delete_permission(model: str, permission_id: str, caller: Caller) -> dict[str, Any]:
        return sharing.delete(caller.tenant_id, model, permission_id)

    # -- uploads (a file in parts) ---------------------------------------------------------

    @app.post("/v1/uploads")
    def create_upload(caller: Caller, body: Body) -> dict[str, Any]:
        return upload_service.create(caller.tenant_id, body)

    @app.post("/v1/uploads/{upload_id}/parts")
    async def add_upload_part(upload_id: str, request: Request,
                              caller: Caller) -> dict[str, Any]:
        limit = min(MAX_PART_BYTES, registry.settings.max_upload_total_bytes)
        form = await read_form(request, limit, uploads, file_field="data")
        try:
            return upload_service.add_part(caller.tenant_id, upload_id, form)
        finally:
            form.discard()

    @app.post("/v1/uploads/{upload_id}/complete")
    def complete_upload(upload_id: str, caller: Caller, body: Body) -> dict[str, Any]:
        return upload_service.complete(caller.tenant_id, upload_id, body)

    @app.post("/v1/uploads/{upload_id}/cancel")
    def cancel_upload(upload_id: str, caller: Caller) -> dict[str, Any]:
        return upload_service.cancel(caller.tenant_id, upload_id)

    # -- fine-tuning jobs ------------------------------------------------------------------

    @app.post("/v1/fine_tuning/jobs", response_model=FineTuningJob)
    def create_job(caller: Caller, body: Body) -> dict[str, Any]:
        return jobs.create_job(caller.tenant_id, body)

    @app.get("/v1/fine_tuning/jobs")
    def list_jobs(request: Request, caller: Caller, after: str | None = None,
                  limit: Limit = None) -> dict[str, Any]:
        metadata = {k[len("metadata["):-1]: v for k, v in request.query_params.items()
                    if k.startswith("metadata[") and k.endswith("]")}
        return jobs.list_jobs(caller.tenant_id, after, limit, metadata or None)

    @app.get("/v1/fine_tuning/jobs/{job_id}", response_model=FineTuningJob)
    def get_job(job_id: str, caller: Caller) -> dict[str, Any]:
        return jobs.get_job(caller.tenant_id, job_id)

    @app.post("/v1/fine_tuning/jobs/{job_id}/cancel", response_model=FineTuningJob)
    def cancel_job(job_id: str, caller: Caller) -> dict[str, Any]:
        return jobs.cancel_job(caller.tenant_id, job_id)

    @app.post("/v1/fine_tuning/jobs/{job_id}/pause", response_model=FineTuningJob)
    def pause_job(job_id: str, caller: Caller) -> dict[str, Any]:
        return jobs.pause_job(caller.tenant_id, job_id)

    @app.post("/v1/fine_tuning/jobs/{job_id}/resume", response_model=FineTuningJob)
    def resume_job(job_id: str, caller: Caller) -> dict[str, Any]:
        return jobs.resume_job(caller.tenant_id, job_id)

    @app.get("/v1/fine_tuning/jobs/{job_id}/events")
    def list_events(job_id: str, caller: Caller, after: str | None = None,
                    limit: Limit = None) -> dict[str, Any]:
        return jobs.list_events(caller.tenant_id, job_id, after, limit)

    @app.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
    def list_checkpoints(job_id: str, caller: Caller, after: str | None = None,
                         limit: Limit = None) -> dict[str, Any]:
        return jobs.list_checkpoints(caller.tenant_id, job_id, after, limit)

    # -- graders (OpenAI's alpha routes: try a grader before paying for a job) -----------

    @app.post("/v1/fine_tuning/alpha/graders/validate")
    def validate_grader(caller: Caller, body: Body) -> dict[str, Any]:
        return graders.validate_grader(caller.tenant_id, body)

    @app.post("/v1/fine_tuning/alpha/graders/run")
    def run_grader(caller: Caller, body: Body) -> dict[str, Any]:
        return graders.run_grader(caller.tenant_id, body)

    # -- models (OpenAI's routes) and Quanta's extensions the console reads --------------

    @app.get("/v1/models")
    def list_models(caller: Caller) -> dict[str, Any]:
        return models.list_models(caller.tenant_id)

    @app.get("/v1/models/{model}")
    def get_model(model: str, caller: Caller) -> dict[str, Any]:
        return models.get_model(caller.tenant_id, model)

    @app.delete("/v1/models/{model}")
    def delete_model(model: str, caller: Caller) -> dict[str, Any]:
        return models.delete_model(caller.tenant_id, model)

    @app.get("/v1/quanta/models/{model}")
    def model_details(model: str, caller: Caller) -> dict[str, Any]:
        return models.details(caller.tenant_id, model)

    @app.post("/v1/quanta/models/{model}/pin")
    def pin_model(model: str, caller: Caller) -> dict[str, Any]:
        return models.set_pinned(caller.tenant_id, model, pinned=True)

    @app.delete("/v1/quanta/models/{model}/pin")
    def unpin_model(model: str, caller: Caller) -> dict[str, Any]:
        return models.set_pinned(caller.tenant_id, model, pinned=False)

    @app.post("/v1/quanta/models/{model}/exports")
    def create_export(model: str, caller: Caller, body: Body) -> dict[str, Any]:
        return models.create_export(caller.tenant_id, model, body)

    @app.get("/v1/quanta/export_jobs")
    def list_export_jobs(caller: Caller) -> dict[str, Any]:
        return models.list_export_jobs(caller.tenant_id)

    @app.get("/v1/quanta/export_jobs/{export_job_id}")
    def get_export_job(export_job_id: str, caller: Caller) -> dict[str, Any]:
        return models.get_export_job(caller.tenant_id, export_job_id)

    @app.post("/v1/quanta/export_jobs/{export_job_id}/cancel")
    def cancel_export_job(export_job_id: str, caller: Caller) -> dict[str, Any]:
        return models.cancel_export_job(caller.tenant_id, export_job_id)

    @app.get("/v1/quanta/exports/{export_id}/content")
    def export_content(export_id: str, caller: Caller) -> FileResponse:
        path, filename = models.export_file(caller.tenant_id, export_id)
        return FileResponse(path, media_type="application/octet-stream", filename=filename)

    @app.get("/v1/quanta/registry/health")
    def registry_health(caller: Caller) -> dict[str, Any]:
        return models.registry_health(caller.tenant_id)

    # -- batches (OpenAI's Batch API: a batch runner answers them through serve) ----------

    @app.post("/v1/batches")
    def create_batch(caller: Caller, body: Body) -> dict[str, Any]:
        return batches.create_batch(caller.tenant_id, body)

    @app.get("/v1/batches")
    def list_batches(caller: Caller, after: str | None = None,
                     limit: Limit = None) -> dict[str, Any]:
        return batches.list_batches(caller.tenant_id, after, limit)

    @app.get("/v1/batches/{batch_id}")
    def get_batch(batch_id: str, caller: Caller) -> dict[str, Any]:
        return batches.get_batch(caller.tenant_id, batch_id)

    @app.post("/v1/batches/{batch_id}/cancel")
    def cancel_batch(batch_id: str, caller: Caller) -> dict[str, Any]:
        return batches.cancel_batch(caller.tenant_id, batch_id)

    # -- evals (OpenAI's Evals API: `quanta tune runner` grades the runs) -----------------

    @app.post("/v1/evals", status_code=201)
    def create_eval(caller: Caller, body: Body) -> dict[str, Any]:
        return evals.create_eval(caller.tenant_id, body)

    @app.get("/v1/evals")
    def list_evals(caller: Caller, after: str | None = None, limit: Limit = None,
                   order: Order = "asc", order_by: str = "created_at") -> dict[str, Any]:
        return evals.list_evals(caller.tenant_id, after, limit, order, order_by)

    @app.get("/v1/evals/{eval_id}")
    def get_eval(eval_id: str, caller: Caller) -> dict[str, Any]:
        return evals.get_eval(caller.tenant_id, eval_id)

    @app.post("/v1/evals/{eval_id}")
    def update_eval(eval_id: str, caller: Caller, body: Body) -> dict[str, Any]:
        return evals.update_eval(caller.tenant_id, eval_id, body)

    @app.delete("/v1/evals/{eval_id}")
    def delete_eval(eval_id: str, caller: Caller) -> dict[str, Any]:
        return evals.delete_eval(caller.tenant_id, eval_id)

    @app.post("/v1/evals/{eval_id}/runs", status_code=201)
    def create_eval_run(eval_id: str, caller: Caller, body: Body) -> dict[str, Any]:
        return evals.create_run(caller.tenant_id, eval_id, body)

    @app.get("/v1/evals/{eval_id}/runs")
    def list_eval_runs(eval_id: str, caller: Caller, after: str | None = None,
                       limit: Limit = None, order: Order = "asc",
                       status: str | None = None) -> dict[str, Any]:
        return evals.list_runs(caller.tenant_id, eval_id, after, limit, order, status)

    @app.get("/v1/evals/{eval_id}/runs/{run_id}")
    def get_eval_run(eval_id: str, run_id: str, caller: Caller) -> dict[str, Any]:
        return evals.get_run(caller.tenant_id, eval_id, run_id)

    @app.post("/v1/evals/{eval_id}/runs/{run_id}")  # OpenAI's spec: cancel
    @app.post("/v1/evals/{eval_id}/runs/{run_id}/cancel")  # what OpenAI's SDK sends
    def cancel_eval_run(eval_id: str, run_id: str, caller: Caller) -> dict[str, Any]:
        return evals.cancel_run(caller.tenant_id, eval_id, run_id)

    @app.delete("/v1/evals/{eval_id}/runs/{run_id}")
    def delete_eval_run(eval_id: str, run_id: str, caller: Caller) -> dict[str, Any]:
        return evals.delete_run(caller.tenant_id, eval_id, run_id)

    @app.get("/v1/evals/{eval_id}/runs/{run_id}/output_items")
    def list_eval_output_items(eval_id: str, run_id: str, caller: Caller,
                               after: str | None = None, limit: Limit = None,
                               order: Order = "asc",
                               status: str | None = None) -> dict[str, Any]:
        return evals.list_items(caller.tenant_id, eval_id, run_id, after, limit, order,
                                status)

    @app.get("/v1/evals/{eval_id}/runs/{run_id}/output_items/{output_item_id}")
    def get_eval_output_item(eval_id: str, run_id: str, output_item_id: str,
                             caller: Caller) -> dict[str, Any]:
        return evals.get_item(caller.tenant_id, eval_id, run_id, output_item_id)

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "DELETE", "PUT", "PATCH"],
                   include_in_schema=False)
    def unknown_route(rest: str) -> JSONResponse:
        raise HTTPNotFound(f"Unknown request URL: /v1/{rest}", code="unknown_url")

    return app

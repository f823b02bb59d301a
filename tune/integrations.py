"""The ``integrations`` of a job request: OpenAI's ``wandb`` and Quanta's ``mlflow``.

Checked when the job is created (a bad entry is a 400 naming its field) and stored on the
job row as given, so the worker opens exactly the runs the API accepted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

if TYPE_CHECKING:
    from quanta.config import Settings

MAX_INTEGRATIONS = 5  # OpenAI's limit on a job's integrations


class IntegrationType(StrEnum):
    WANDB = "wandb"
    MLFLOW = "mlflow"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WandbSettings(_Strict):
    """OpenAI's ``wandb`` block; the run's display name defaults to the job's id."""

    project: str = Field(min_length=1, max_length=128)
    name: str | None = Field(None, max_length=128)
    entity: str | None = Field(None, max_length=128)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=64)


class WandbIntegration(_Strict):
    type: Literal[IntegrationType.WANDB]
    wandb: WandbSettings


class MlflowSettings(_Strict):
    """Quanta's ``mlflow`` block: an MLflow tracking server reached over HTTP(S).

    Only ``http``/``https`` URIs: a ``file:`` or database URI would have the worker write
    wherever the tenant names on its own machine.
    """

    tracking_uri: str = Field(min_length=1, max_length=2048)
    experiment_name: str = Field(min_length=1, max_length=255)
    run_name: str | None = Field(None, max_length=255)

    @field_validator("tracking_uri")
    @classmethod
    def _http(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("tracking_uri must be an http:// or https:// URL of an MLflow "
                             "tracking server")
        # MLflow appends its API path to the URI as text: a query or fragment would cut
        # it off and aim the worker's requests at a path the job chose.
        if parts.username or parts.password or parts.query or parts.fragment or "#" in v:
            raise ValueError("tracking_uri must have no credentials, query or fragment")
        return v.rstrip("/")

    @property
    def host(self) -> str:
        """``host`` or ``host:port``, as ``QUANTA_TRACKING_MLFLOW_HOSTS`` lists them."""
        parts = urlsplit(self.tracking_uri)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


class MlflowIntegration(_Strict):
    type: Literal[IntegrationType.MLFLOW]
    mlflow: MlflowSettings


Integration = Annotated[WandbIntegration | MlflowIntegration, Field(discriminator="type")]
Integrations = Annotated[list[Integration], Field(max_length=MAX_INTEGRATIONS)]

_STORED: TypeAdapter[list[Integration]] = TypeAdapter(list[Integration])


def _listed(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",") if item.strip()}


def refusal(integration: Integration, settings: Settings) -> tuple[str, str] | None:
    """Why the operator's settings refuse ``integration`` (the field, the reason), or None.

    Checked when the job is created and again when the worker opens its run."""
    if isinstance(integration, MlflowIntegration):
        allowed = _listed(settings.tracking_mlflow_hosts)
        host = integration.mlflow.host.lower()
        if host not in allowed and host.split(":")[0] not in allowed:
            return ("mlflow.tracking_uri", f"MLflow server {host} is not one this "
                    "installation logs to (QUANTA_TRACKING_MLFLOW_HOSTS)")
    elif integration.wandb.entity is not None and \
            integration.wandb.entity.lower() not in _listed(settings.tracking_wandb_entities):
        return ("wandb.entity", f"W&B entity {integration.wandb.entity} is not one this "
                "installation logs to (QUANTA_TRACKING_WANDB_ENTITIES)")
    return None


def stored_integrations(rows: list[dict] | None) -> list[Integration]:
    """The job row's ``integrations`` column, typed again (as the API accepted it)."""
    return _STORED.validate_python(rows or [])

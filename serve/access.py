"""Who may use which model: API keys to tenants, model names to what the engine serves.

Shared by the HTTP middleware and the gRPC servicer so both surfaces apply exactly the
same rules: a tenant uses the shared base model, its own adapters and those other
tenants shared with it; anything else is "does not exist" (404), whether it exists for
another tenant or not at all. One server serves one base: a model of another base that
the caller may use (that base itself, or an adapter trained on it) is a 404 too, whose
message names the servers of that base the registry knows (``serve.endpoint``), or says
that none runs now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quanta.calculator import calculator_flag
from quanta.registry import AdapterRecord, CorruptBlobError, NotFoundError, Registry
from quanta.tenancy import (
    AuthError,
    Principal,
    authenticate,
    bearer_token,
    check_metrics_token,
)
from serve.errors import (
    AdapterCorruptError,
    AdapterTooLargeError,
    AdapterUnavailableError,
    HTTPNotFound,
    HTTPUnauthorized,
    ModelNotFoundError,
    ModelServedElsewhereError,
)


@dataclass(frozen=True)
class ResolvedModel:
    """A model name as the engine must see it (base name or globally unique ``ft:`` name)."""

    engine_name: str
    adapter: AdapterRecord | None = None

    @property
    def is_base(self) -> bool:
        return self.adapter is None

    @property
    def calculator(self) -> bool:
        """Whether the adapter was trained to write calculations (calculator decoding)."""
        return self.adapter is not None and calculator_flag(self.adapter.config)


class ModelAccess:
    """Authentication and ownership checks for one served base model."""

    def __init__(self, registry: Registry, base_model_id: str, served_name: str,
                 available: Callable[[], set[str]] | None = None,
                 verify: Callable[[AdapterRecord], object] | None = None,
                 max_lora_rank: int | None = None) -> None:
        """``available``: for engines with a fixed model list (llama.cpp), the adapter
        names they can serve; None means any adapter of the base (vLLM loads on demand).
        ``max_lora_rank``: larger adapters are refused with a clear 400, never loaded.
        ``verify``: materialise-and-check an adapter's files (raises CorruptBlobError), so a
        corrupt adapter is refused before the engine ever loads it. Under vLLM it is
        ``serve.handoff``'s ``prepare``, which also hands this resolution to vLLM's
        resolver: the request's model is looked up and its files hashed here only."""
        self.registry = registry
        self.base_model_id = base_model_id
        self.served_name = served_name
        self.available = available
        self.verify = verify
        self.max_lora_rank = max_lora_rank

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization`` header value; raises HTTPUnauthorized."""
        try:
            return authenticate(self.registry, bearer_token(authorization))
        except AuthError as exc:
            raise HTTPUnauthorized(str(exc)) from exc

    def check_metrics_token(self, authorization: str | None) -> None:
        """``/metrics`` with ``QUANTA_METRICS_TOKEN`` set: raises HTTPUnauthorized."""
        try:
            check_metrics_token(self.registry.settings, authorization)
        except AuthError as exc:
            raise HTTPUnauthorized(str(exc)) from exc

    def resolve(self, principal: Principal, model: str | None) -> ResolvedModel:
        """Map a requested model name to the engine's name, or raise a typed error. The one
        registry lookup of the request's model (and, through ``verify``, the one check of
        its files) on its way to the engine."""
        if not model or model in (self.served_name, self.base_model_id):
            return ResolvedModel(self.served_name)
        try:
            adapter = self.registry.usable_adapter(principal.tenant_id, model)
        except NotFoundError:
            raise self._unknown_or_other_base(principal, model) from None
        if adapter.base_model_id != self.base_model_id:
            raise self._served_elsewhere(model, adapter.base_model_id, adapter=True)
        rank = self._too_large_rank(adapter)
        if rank is not None:
            raise AdapterTooLargeError(
                f"The adapter `{model}` has LoRA rank {rank}; this server loads ranks up to "
                f"{self.max_lora_rank} (quanta serve --max-lora-rank).")
        if self.available is not None and adapter.name not in self.available():
            raise AdapterUnavailableError(
                f"The adapter `{model}` has no export this server can load "
                "(llama.cpp serves adapters exported as LoRA GGUF when it starts).")
        if self.verify is not None:
            try:
                self.verify(adapter)
            except (CorruptBlobError, NotFoundError) as exc:
                raise AdapterCorruptError(
                    f"The adapter `{model}` failed its integrity check ({exc}); it is not "
                    "served. An operator should run `quanta registry verify`.") from None
        return ResolvedModel(adapter.name, adapter)

    def card(self, principal: Principal, model: str) -> AdapterRecord | None:
        """What ``GET /v1/models/{model}`` describes: None for the base model, else an adapter
        the caller may use and this server can serve; for another base's model, the 404
        naming where it is served; ModelNotFoundError for anything else (no integrity
        check: a card reads no weights)."""
        if model in (self.served_name, self.base_model_id):
            return None
        adapter = next((a for a in self.adapters(principal) if model in (a.name, a.id)), None)
        if adapter is not None:
            return adapter
        try:
            other = self.registry.usable_adapter(principal.tenant_id, model)
        except NotFoundError:
            raise self._unknown_or_other_base(principal, model) from None
        if other.base_model_id != self.base_model_id:
            raise self._served_elsewhere(model, other.base_model_id, adapter=True)
        raise ModelNotFoundError(model, self.served_name)

    def adapters(self, principal: Principal) -> list[AdapterRecord]:
        """The caller's adapters that this server can serve (same base model), checkpoint
        models and adapters shared with the caller included."""
        names = self.available() if self.available is not None else None
        usable = (self.registry.list_adapters(principal.tenant_id, checkpoints=True)
                  + self.registry.permissions.shared_with(principal.tenant_id))
        return [a for a in usable if a.base_model_id == self.base_model_id
                and (names is None or a.name in names) and self._too_large_rank(a) is None]

    def _unknown_or_other_base(self, principal: Principal, model: str) -> HTTPNotFound:
        """The 404 for a name that is no adapter the caller may use: another base model it
        may use is served elsewhere; anything else (another tenant's private base too)
        does not exist."""
        try:
            base = self.registry.get_base_model(model, principal.tenant_id)
        except NotFoundError:
            return ModelNotFoundError(model, self.served_name)
        return self._served_elsewhere(model, base.id, adapter=False)

    def _served_elsewhere(self, model: str, base_model_id: str,
                          adapter: bool) -> ModelServedElsewhereError:
        """Where the servers of ``base_model_id`` are (the live ones the registry knows)."""
        urls = list(dict.fromkeys(e.url for e in
                                  self.registry.serve_endpoints.for_base(base_model_id)))
        return ModelServedElsewhereError(served_elsewhere_message(
            model, base_model_id if adapter else None, urls, self.served_name))

    def _too_large_rank(self, adapter: AdapterRecord) -> int | None:
        """The adapter's LoRA rank when it is above what this server loads, else None."""
        rank = (adapter.config.get("lora") or {}).get("r")
        too_large = (self.max_lora_rank is not None and isinstance(rank, int)
                     and rank > self.max_lora_rank)
        return rank if too_large else None


def served_elsewhere_message(model: str, adapter_of: str | None, urls: list[str],
                             served: str) -> str:
    """``The model `gemma3-270m` is served by http://host:8001; this server serves
    `smollm2-135m-instruct`.`` (``adapter_of``: the adapter's base, named too), or that no
    server of it runs now."""
    what = f"`{model}`" + (f" (an adapter of `{adapter_of}`)" if adapter_of else "")
    where = f"is served by {', '.join(urls)}" if urls else "is not served anywhere right now"
    return f"The model {what} {where}; this server serves `{served}`."

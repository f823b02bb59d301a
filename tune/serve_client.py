"""tune's work that asks Quanta's serve as a client (eval runs, batches): where a model is
served, and a key that acts as the work's tenant.

tune never imports serve (``tests/unit/test_architecture.py``): it speaks serve's OpenAI
HTTP API, like any user, so adapters, calculator decoding and tenancy apply exactly as
they would to the tenant's own requests. One server serves one base model; the registry
knows where each base is served (``registry.serve_endpoints``), else the operator names
one server (``QUANTA_SERVE_URL``). The work authenticates with a key minted for it in
the tenant's name and revoked when it stops (:func:`tenant_key`): it can do nothing the
tenant could not, and nothing once it is over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from quanta.registry import NotFoundError, Registry
from quanta.tenancy import create_key, revoke_key


class NoServer(RuntimeError):
    """No ``quanta serve`` serves the base model, and no ``QUANTA_SERVE_URL`` is set."""


def model_base(registry: Registry, tenant_id: str, model: str) -> str:
    """The base model id of a model the tenant may ask serve for: a base model, or a
    fine-tuned model (checkpoints too) of its own or shared with it. NotFoundError for
    anything else (another tenant's model answers as an unknown one)."""
    try:
        return registry.get_base_model(model, tenant_id).id
    except NotFoundError:
        return registry.usable_adapter(tenant_id, model).base_model_id


def serve_url(registry: Registry, base_model_id: str) -> str:
    """The root URL (no ``/v1``) of a server of ``base_model_id``: the first live one the
    registry knows, else ``QUANTA_SERVE_URL``; NoServer when there is neither."""
    live = registry.serve_endpoints.live(base_model_id)
    if live:
        return live[0].url.rstrip("/")
    if registry.settings.serve_url:
        return registry.settings.serve_url.rstrip("/").removesuffix("/v1")
    raise NoServer(f"no quanta serve serves {base_model_id} (none registered a live "
                   "endpoint) and QUANTA_SERVE_URL is not set")


@contextmanager
def tenant_key(registry: Registry, tenant_id: str, name: str) -> Iterator[str]:
    """An API key of ``tenant_id`` (named ``name``, as ``quanta tenants keys`` lists it)
    for the duration of the block; revoked when it ends, however it ends."""
    row, plaintext = create_key(registry, tenant_id, name=name)
    try:
        yield plaintext
    finally:
        revoke_key(registry, row.id)


def serve_client(url: str, api_key: str, timeout: float = 300.0) -> httpx.Client:
    """An HTTP client of serve's OpenAI API at ``url`` (its root), as the key's tenant;
    paths are relative to ``/v1`` (``client.post("chat/completions", ...)``)."""
    return httpx.Client(base_url=f"{url.rstrip('/')}/v1/",
                        headers={"Authorization": f"Bearer {api_key}"},
                        timeout=httpx.Timeout(timeout, connect=10.0))

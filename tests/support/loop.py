"""One live customization loop for the Evals, Batch and Responses tests: a real ``quanta
serve`` (vLLM) and the tune API in a thread, over one registry with two tenants and their
adapters. Started once per session (``loop`` in ``tests/conftest.py``): a vLLM start is
about a minute of CI time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import openai

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID, import_model
from quanta.registry import Registry
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import make_adapter
from tests.support.servers import serve_api, start_base_serve

TENANTS = ("acme", "globex")


@dataclass
class Loop:
    """Where the loop's servers are and what they hold. ``adapters`` maps a label to the
    adapter's ``ft:`` name: ``plain`` and ``calculating`` (calculator decoding) belong to
    acme, ``globex`` to globex."""

    home: Path
    registry: Registry
    base: str
    serve_url: str
    tune_url: str
    keys: dict[str, str]
    adapters: dict[str, str] = field(default_factory=dict)
    serve_log: Path | None = None

    def tune(self, tenant: str = "acme") -> openai.OpenAI:
        """The official SDK on the tune API (files, fine-tuning, evals, batches)."""
        return openai.OpenAI(base_url=f"{self.tune_url}/v1", api_key=self.keys[tenant],
                             max_retries=0, timeout=120)

    def serve(self, tenant: str = "acme") -> openai.OpenAI:
        """The official SDK on serve (chat, completions, responses)."""
        return openai.OpenAI(base_url=f"{self.serve_url}/v1", api_key=self.keys[tenant],
                             max_retries=0, timeout=120)


@contextmanager
def start_loop(home: Path, base_model_dir: Path) -> Iterator[Loop]:
    from tune.api.app import create_app

    settings = Settings(home=home, allow_anonymous=False)
    registry = Registry.open(settings)
    import_model(registry, base_model_dir, DEFAULT_MODEL_ID)
    keys = {}
    for tenant in TENANTS:
        create_tenant(registry, tenant)
        keys[tenant] = create_key(registry, tenant)[1]
    adapters = {}
    for label, tenant, seed, calculator in (("plain", "acme", 11, False),
                                            ("calculating", "acme", 12, True),
                                            ("globex", "globex", 13, False)):
        directory = make_adapter(base_model_dir, home / "adapters" / label, seed=seed)
        row = registry.add_adapter(tenant, DEFAULT_MODEL_ID, directory, suffix=label,
                                   config={"calculator": True} if calculator else None)
        adapters[label] = row.name
    with ExitStack() as stack:
        running = start_base_serve(home, DEFAULT_MODEL_ID, "--max-loras", "2",
                                   grpc=False, log_name="loop-serve.log")
        stack.callback(running.stop)
        tune_url = stack.enter_context(serve_api(create_app(settings, registry)))
        yield Loop(home=home, registry=registry, base=DEFAULT_MODEL_ID,
                   serve_url=running.url, tune_url=tune_url, keys=keys, adapters=adapters,
                   serve_log=running.log)

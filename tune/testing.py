"""Helpers for tune's tests (and demos): seeded registries, tiny datasets, a live API.

Kept in the package rather than a conftest so unit, integration and e2e tests share them.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quanta.config import Settings
from quanta.registry import NotFoundError, Registry

TINY_MAX = {"max_length": 128, "padding_free": True}


def seeded_registry(home: Path, base_model_dir: Path, model_id: str | None = None,
                    settings: Settings | None = None) -> Registry:
    """A fresh registry at ``home`` holding the base model from an existing local directory.

    Copying a materialised model (a second or two) is much cheaper than importing the GGUF.
    """
    from quanta.models import DEFAULT_MODEL_ID

    registry = Registry.open(settings or Settings(home=home))
    model_id = model_id or DEFAULT_MODEL_ID
    try:
        registry.get_base_model(model_id)
    except NotFoundError:
        registry.add_base_model(model_id, base_model_dir, source=str(base_model_dir),
                                architecture="LlamaForCausalLM", info={})
    return registry


def arithmetic_chat(n: int = 8) -> list[dict[str, Any]]:
    """A tiny, learnable chat dataset (loss falls fast on it)."""
    return [{"messages": [
        {"role": "system", "content": "Answer with one short sentence."},
        {"role": "user", "content": f"What is {a} plus {a}?"},
        {"role": "assistant", "content": f"The answer is {2 * a}."},
    ]} for a in range(n)]


def preference_pairs(n: int = 4) -> list[dict[str, Any]]:
    """OpenAI DPO records."""
    return [{"input": {"messages": [{"role": "user", "content": f"What is {a} plus {a}?"}]},
             "preferred_output": [{"role": "assistant", "content": f"The answer is {2 * a}."}],
             "non_preferred_output": [{"role": "assistant", "content": "I do not know."}]}
            for a in range(n)]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_api(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a random local port; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

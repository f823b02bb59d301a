"""Registries, datasets and adapters for tests and benchmarks (no training needed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID
from quanta.registry import JobRecord, NotFoundError, Registry


def bench_model_home() -> Path:
    """Where benchmarks keep a registry with the imported base model, across runs."""
    from quanta.config import get_settings

    return get_settings().resolved_cache / "bench-model"


def calculating_adapter(registry: Registry, tenant: str, name: str | None = None) -> Any:
    """The adapter ``name``, else the tenant's newest adapter trained with calculation
    traces (what the default demo trains): the physics benchmarks' subject."""
    from quanta.calculator import calculator_flag

    if name:
        return registry.resolve_adapter(tenant, name)
    trained = [a for a in registry.list_adapters(tenant) if calculator_flag(a.config)]
    if not trained:
        raise SystemExit("no adapter trained with calculation traces: run `quanta demo` first")
    return max(trained, key=lambda a: a.created_at)


def base_model_dir(home: Path) -> Path:
    """The base model's local directory from the registry at ``home`` (imported on first
    use: ~20 s once)."""
    from quanta.models import model_path

    return model_path(Registry.open(Settings(home=home)))


def seeded_registry(home: Path, base_model_dir: Path, model_id: str | None = None,
                    settings: Settings | None = None) -> Registry:
    """A fresh registry at ``home`` holding the base model from an existing local directory.

    Copying a materialised model (a second or two) is much cheaper than importing the GGUF.
    """
    registry = Registry.open(settings or Settings(home=home))
    model_id = model_id or DEFAULT_MODEL_ID
    try:
        registry.get_base_model(model_id)
    except NotFoundError:
        registry.add_base_model(model_id, base_model_dir, source=str(base_model_dir),
                                architecture="LlamaForCausalLM", info={})
    return registry


def fake_base_models(registry: Registry, directory: Path, *model_ids: str) -> Path:
    """Register stand-in base models (a directory with an empty ``config.json``) for tests
    that route, resolve or store models but never load their weights."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text("{}")
    for model_id in model_ids:
        registry.add_base_model(model_id, directory, source="test")
    return directory


def fake_adapter_dir(directory: Path, config: str = "{}") -> Path:
    """A stand-in peft adapter directory (an ``adapter_config.json``, no real weights)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "adapter_config.json").write_text(config)
    return directory


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


def tiny_job(training_file: str, *, seed: int = 0, max_steps: int = 2,
             checkpoint_every: int = 2, **quanta: Any) -> dict[str, Any]:
    """A ``POST /v1/fine_tuning/jobs`` body that trains a rank-4 adapter in seconds."""
    return {"model": DEFAULT_MODEL_ID, "training_file": training_file, "seed": seed,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {
                "batch_size": 4, "learning_rate_multiplier": 5}}},
            "quanta": {"max_steps": max_steps, "checkpoint_every": checkpoint_every,
                       "max_length": 128, "lora": {"r": 4, "alpha": 8},
                       "eval": {"physics_n": 0, "loss_examples": 0}, **quanta}}


def run_job(registry: Registry, tenant: str, path: Path, body: dict[str, Any]
            ) -> tuple[JobRecord, float]:
    """Upload ``path``, create the job ``body`` describes and train it in this process with
    one worker, as the benchmarks do; returns the succeeded job and its seconds."""
    import time

    from quanta.types import FilePurpose
    from tune.api.service import TuneService
    from tune.train.worker import Worker

    service = TuneService(registry)
    file_id = service.create_file(tenant, path.name, FilePurpose.FINE_TUNE, path)["id"]
    job = service.create_job(tenant, {**body, "training_file": file_id})
    started = time.monotonic()
    Worker(registry).run_once(job["id"])
    done = registry.jobs.get(job["id"])
    if done is None or done.status != "succeeded":
        raise RuntimeError(f"job {job['id']} did not succeed: {done and done.error}")
    return done, time.monotonic() - started


@contextmanager
def offline_llm(**engine_args: Any) -> Iterator[Any]:
    """An offline ``vllm.LLM`` whose engine process ends with this one's.

    vLLM runs its engine core in a child process that outlives a benchmark stopped by
    SIGTERM (Python's default handler skips finalizers), holding gigabytes and a core.
    Here SIGTERM unwinds like Ctrl-C and the engine is shut down on the way out.
    """
    import signal

    from vllm import LLM

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    llm = None
    try:
        llm = LLM(**engine_args)
        yield llm
    finally:
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()
        signal.signal(signal.SIGTERM, previous)


def make_adapter(base_model_dir: Path, out_dir: Path, *, seed: int, r: int = 8,
                 scale: float = 0.3,
                 target_modules: tuple[str, ...] = ("q_proj", "v_proj")) -> Path:
    """Save a random rank-``r`` LoRA adapter for the model in ``base_model_dir``.

    peft's default zero-initialised B would make the adapter a no-op; random non-zero
    weights make different seeds give different greedy outputs from the same base.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=torch.float32)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(target_modules),
                        lora_dropout=0.0, init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(scale)
    peft_model.save_pretrained(out_dir)
    return out_dir


def adapter_variant(src: Path, dest: Path, seed: int) -> Path:
    """A copy of a peft adapter with its LoRA B matrices rescaled by a seeded factor.

    Gives many distinct adapters (different greedy outputs, different sha256) from one
    ``make_adapter`` call, in milliseconds instead of a model load each.
    """
    import torch
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "adapter_config.json", dest / "adapter_config.json")
    tensors = load_file(src / "adapter_model.safetensors")
    gen = torch.Generator().manual_seed(seed)
    for name, tensor in tensors.items():
        if "lora_B" in name:
            tensors[name] = tensor * (0.5 + torch.rand(1, generator=gen).item() * 1.5)
    save_file(tensors, dest / "adapter_model.safetensors")
    return dest


def tenant_keys(registry: Registry, *tenants: str) -> dict[str, str]:
    """Create ``tenants`` with one API key each; tenant -> key."""
    from quanta.tenancy import create_key, create_tenant

    keys = {}
    for tenant in tenants:
        create_tenant(registry, tenant)
        keys[tenant] = create_key(registry, tenant)[1]
    return keys


@dataclass
class Tenants:
    """A registry with tenants, one key each and adapters of their own."""

    home: Path
    registry: Registry
    keys: dict[str, str]  # tenant -> key
    key_ids: dict[str, str]
    adapters: dict[str, list[str]]  # tenant -> ft: names
    template: Path  # a real peft adapter directory to derive more from


def tenants_with_adapters(home: Path, base_model_dir: Path, tenants: list[str],
                          per_tenant: int = 2, allow_anonymous: bool = False) -> Tenants:
    """A registry at ``home``: the base model, tenants with one key and ``per_tenant``
    adapters each (distinct contents)."""
    from quanta.models import import_model
    from quanta.tenancy import create_key, create_tenant

    registry = Registry.open(Settings(home=home, allow_anonymous=allow_anonymous))
    import_model(registry, base_model_dir, DEFAULT_MODEL_ID)
    template = make_adapter(base_model_dir, home / "adapters" / "template", seed=7)
    keys, key_ids, adapters = {}, {}, {}
    seed = 0
    for tenant in tenants:
        create_tenant(registry, tenant)
        row, keys[tenant] = create_key(registry, tenant)
        key_ids[tenant] = row.id
        adapters[tenant] = []
        for i in range(per_tenant):
            seed += 1
            directory = adapter_variant(template, home / "adapters" / f"{tenant}-{i}", seed)
            adapters[tenant].append(registry.add_adapter(tenant, DEFAULT_MODEL_ID, directory,
                                                         suffix=f"a{i}").name)
    return Tenants(home, registry, keys, key_ids, adapters, template)


def dead_pid() -> int:
    """The pid of a process that has just exited (for names a dead writer left)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid

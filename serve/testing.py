"""Serve's test fixtures, shared by tests and benchmarks: adapters, servers, load.

``make_adapter`` writes a peft adapter with random, non-zero LoRA weights (peft's
default zero-initialised B would make the adapter a no-op), so different seeds give
different greedy outputs from the same base model. ``throughput`` measures output
tokens/s for concurrent streamed completions against any OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx


def make_adapter(base_model_dir: Path, out_dir: Path, *, seed: int, r: int = 8,
                 scale: float = 0.3,
                 target_modules: tuple[str, ...] = ("q_proj", "v_proj")) -> Path:
    """Save a random rank-``r`` LoRA adapter for the model in ``base_model_dir``."""
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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(argv: list[str], env: dict[str, str], log: Path):
    """Start a server in its own process group (so it and its children stop together)."""
    import subprocess

    with open(log, "wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_healthy(url: str, proc, timeout: float, log: Path | None = None) -> float:
    """Poll ``url``/health until 200; returns seconds waited. Raises if the process dies."""
    import time

    import httpx

    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{url} not healthy after {timeout:.0f}s:\n{tail(log)}")
        time.sleep(2)


def stop_process(proc, grace: float = 60) -> None:
    """SIGTERM the server, then SIGKILL whatever is left of its process group."""
    import contextlib
    import os
    import signal
    import subprocess

    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)  # the server stops its engine processes itself
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):  # the engine core shares the group
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def tail(path: Path | None, lines: int = 60) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def llama_cpp_tools(cache: Path | None = None) -> Path | None:
    """A directory holding llama.cpp's ``convert_lora_to_gguf.py`` and its ``gguf-py``.

    Looks for an extracted copy under ``~/.cache/quanta/llama.cpp-*`` (scripts/setup.sh
    and the quantize service keep one there), else extracts the few files it needs from
    the cached llama-cpp-python sdist. None when neither is on this machine.
    """
    import tarfile

    cache = cache or Path.home() / ".cache" / "quanta"
    for candidate in sorted(cache.glob("llama.cpp-*"), reverse=True):
        if (candidate / "convert_lora_to_gguf.py").is_file() and (candidate / "gguf-py").is_dir():
            return candidate
    for sdist in sorted(cache.glob("sdist/llama_cpp_python-*.tar.gz"), reverse=True):
        version = sdist.name.removeprefix("llama_cpp_python-").removesuffix(".tar.gz")
        dest = cache / f"llama.cpp-{version}"
        prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
        wanted = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion/", "gguf-py/")
        with tarfile.open(sdist) as tar:
            members = []
            for member in tar.getmembers():
                rel = member.name.removeprefix(prefix)
                if member.name.startswith(prefix) and rel.startswith(wanted) and member.isfile():
                    member.name = rel
                    members.append(member)
            tar.extractall(dest, members=members, filter="data")
        return dest
    return None


def make_lora_gguf(adapter_dir: Path, base_model_dir: Path, out: Path, tools: Path) -> Path:
    """Convert a peft adapter to an f16 LoRA GGUF with llama.cpp's converter (~5 s)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(tools / "gguf-py")}
    subprocess.run([sys.executable, str(tools / "convert_lora_to_gguf.py"), "--base",
                    str(base_model_dir), "--outfile", str(out), "--outtype", "f16",
                    str(adapter_dir)], env=env, check=True, capture_output=True)
    return out


# -- load: concurrent streamed completions, as the serving benchmarks send them ---------------

PROMPT = "Explain, step by step, why a heavier object does not fall faster in a vacuum."
CONCURRENCY = 16


async def one_request(client: httpx.AsyncClient, url: str, headers: dict, model: str,
                      max_tokens: int) -> tuple[float, int]:
    """Stream one completion; returns (time to first token, completion tokens)."""
    body = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    ttft, tokens = None, 0
    async with client.stream("POST", f"{url}/v1/completions", json=body,
                             headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            payload = json.loads(line[6:])
            if ttft is None and any(c.get("text") for c in payload.get("choices") or []):
                ttft = time.perf_counter() - started
            if payload.get("usage"):
                tokens = payload["usage"].get("completion_tokens", tokens)
    return (ttft if ttft is not None else time.perf_counter() - started), tokens


async def throughput(url: str, headers: dict, models: list[str], max_tokens: int,
                     rounds: int = 2) -> float:
    """Output tokens/s for ``CONCURRENCY`` concurrent requests cycling over ``models``."""
    async with httpx.AsyncClient(timeout=600) as client:
        # Warm-up round: loads every adapter, fills caches; not counted.
        await asyncio.gather(*(one_request(client, url, headers, models[i % len(models)], 8)
                               for i in range(CONCURRENCY)))
        total_tokens, total_time = 0, 0.0
        for _ in range(rounds):
            started = time.perf_counter()
            results = await asyncio.gather(*(
                one_request(client, url, headers, models[i % len(models)], max_tokens)
                for i in range(CONCURRENCY)))
            total_time += time.perf_counter() - started
            total_tokens += sum(tokens for _, tokens in results)
    return total_tokens / total_time

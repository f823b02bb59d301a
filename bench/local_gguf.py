"""Local inference: decode tokens/s of the q4_k_m GGUF in llama.cpp vs transformers
``generate`` on the same merged model, in one run; plus every export's size and perplexity.

    python bench/local_gguf.py                       # builds a throwaway registry + adapter
    python bench/local_gguf.py --home DIR --adapter NAME   # an existing adapter's exports

Without ``--adapter`` it imports SmolLM2 into a temporary QUANTA_HOME, makes a LoRA
adapter (r=8 on q/v, random B so it changes the output) and exports every format (GPTQ
only when .venv-gptq exists). Run it alone: ``flock /tmp/quanta-heavy.lock python ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "A 2 kg ball moves at 3 m/s. What is its kinetic energy? Explain step by step."


def setup(home: Path, with_gptq: bool) -> str:
    from quanta.config import Settings
    from quanta.models import DEFAULT_MODEL_ID, ensure_model, model_path
    from quanta.registry import Registry
    from quanta.types import ExportFormat
    from quantize import export
    from tests.support.fixtures import make_adapter

    registry = Registry.open(Settings(home=home))
    ensure_model(registry)
    adapter_dir = make_adapter(model_path(registry), home / "bench-adapter", seed=0)
    row = registry.add_adapter(registry.settings.default_tenant, DEFAULT_MODEL_ID, adapter_dir,
                               suffix="bench")
    for fmt in ExportFormat:
        if fmt == ExportFormat.GPTQ and not with_gptq:
            continue
        started = time.perf_counter()
        export(registry, row.name, fmt)
        print(f"exported {fmt:<12} in {time.perf_counter() - started:6.1f} s", flush=True)
    return row.name


def llama_decode_tps(model_path: Path, tokens: int, threads: int | None
                     ) -> tuple[float, float]:
    """(decode tokens/s, prompt seconds) with greedy sampling, EOS ignored.
    ``threads=None``: Quanta's default (``quantize.quality.decode_threads``)."""
    from quantize.quality import load_llama

    llm = load_llama(model_path, n_ctx=1024, n_threads=threads)
    try:
        messages = [{"role": "user", "content": PROMPT}]
        prompt = llm.tokenize(_chat_prompt(messages).encode(), add_bos=False, special=True)
        llm.reset()
        t0 = time.perf_counter()
        t_first = None
        n = 0
        for _ in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            n += 1
            if n == 1:
                t_first = time.perf_counter()
            if n == tokens:
                break
        t_end = time.perf_counter()
        assert t_first is not None
        return (n - 1) / (t_end - t_first), t_first - t0
    finally:
        llm.close()


def _chat_prompt(messages: list[dict[str, str]]) -> str:
    text = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by " \
           "Hugging Face<|im_end|>\n"
    for m in messages:
        text += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    return text + "<|im_start|>assistant\n"


def transformers_decode_tps(model_dir: Path, tokens: int, dtype_name: str) -> float:
    """Decode tokens/s of transformers ``generate`` (greedy, exactly ``tokens`` new tokens),
    prompt time subtracted by timing a 1-token generate of the same prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, dtype_name)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    ids = tokenizer(_chat_prompt([{"role": "user", "content": PROMPT}]),
                    return_tensors="pt", add_special_tokens=False)["input_ids"]

    def run(n: int) -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                           pad_token_id=tokenizer.eos_token_id)
        return time.perf_counter() - started

    run(4)  # warm-up
    prefill = min(run(1) for _ in range(2))
    total = run(tokens)
    return (tokens - 1) / (total - prefill)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="QUANTA_HOME holding the adapter's exports")
    parser.add_argument("--adapter", help="adapter name; default: make one in a temp home")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads, and llama.cpp's in the extra comparison row")
    parser.add_argument("--no-gptq", action="store_true")
    args = parser.parse_args()

    from quanta.config import Settings
    from quanta.registry import Registry
    from quanta.types import ExportFormat
    from quantize.chat import resolve_local_model
    from quantize.cli import quality_table
    from quantize.exporters import resolve_target
    from quantize.gptq import gptq_venv

    tmp = None
    if args.adapter is None:
        tmp = tempfile.TemporaryDirectory(prefix="quanta-bench-")
        args.home = Path(tmp.name)
        with_gptq = not args.no_gptq and (gptq_venv() / "bin" / "python").is_file()
        args.adapter = setup(args.home, with_gptq)
    registry = Registry.open(Settings(home=args.home) if args.home else None)
    target = resolve_target(registry, args.adapter)
    q4 = resolve_local_model(registry, f"{args.adapter}@gguf-q4_k_m")
    merged = registry.find_export(base_model_id=target.base_model_id, format=ExportFormat.MERGED,
                                  adapter_id=target.adapter_id)
    if merged is None:
        raise SystemExit(f"{args.adapter} has no merged export: quanta export ... --format merged")
    merged_dir = registry.materialize(merged.sha256)

    import torch

    torch.set_num_threads(args.threads)
    print(f"\ndecode speed, {args.tokens} new tokens, greedy, {args.threads} threads "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")
    from quantize.quality import decode_threads

    auto = decode_threads(q4.model_path)
    llama_tps, prompt_s = llama_decode_tps(q4.model_path, args.tokens, None)
    llama_all, _ = llama_decode_tps(q4.model_path, args.tokens, args.threads)
    hf = {d: transformers_decode_tps(merged_dir, args.tokens, d) for d in ("bfloat16", "float32")}
    best_dtype = max(hf, key=hf.__getitem__)
    print(f"  llama.cpp  gguf-q4_k_m ({auto} thr)  {llama_tps:8.1f} tok/s  "
          f"(prompt {prompt_s:.2f} s; Quanta's default decode threads)")
    print(f"  llama.cpp  gguf-q4_k_m ({args.threads} thr)  {llama_all:8.1f} tok/s  "
          f"(OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']})")
    for dtype, tps in hf.items():
        print(f"  transformers merged ({dtype:<8}) {tps:8.1f} tok/s")
    print(f"  ratio llama.cpp q4_k_m / transformers (best: {best_dtype}) = "
          f"{llama_tps / hf[best_dtype]:.2f}x  (vs bf16: {llama_tps / hf['bfloat16']:.2f}x)")

    rows = [r for r in registry.list_exports(target.tenant_id)
            if r.adapter_id == target.adapter_id and r.base_model_id == target.base_model_id]
    from rich.console import Console

    Console(width=160).print(quality_table(registry, rows, title=f"\nexports of {target.name}"))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

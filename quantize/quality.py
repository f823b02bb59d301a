"""Export quality: perplexity on fixed held-out text, against the unquantized model.

The text is the worked answers of the default domain's held-out problems (never trained on),
a few thousand tokens, scored in non-overlapping windows so every engine sees the same
token stream. GGUF exports are scored by llama.cpp (``logits_all=True``), merged and
GPTQ exports by transformers; a ratio is only ever taken within one engine, against
the f16 GGUF or the merged model (computed in ``quanta.precision``'s dtype) respectively.

This module is also imported inside the GPTQ environment, so torch, transformers and
llama_cpp are imported lazily.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quanta.domains import get_domain
from quanta.types import ComputeDtype
from quantize.errors import CorruptGGUFError, QualityError

WINDOW = 512  # tokens per scored window (SmolLM2 trains on far longer contexts)
HELD_OUT_PROBLEMS = 30  # ~3k tokens of worked answers: a few seconds per model on 2 cores


def held_out_text(n: int = HELD_OUT_PROBLEMS) -> str:
    """Fixed evaluation text: question and worked answer of the first ``n`` held-out problems."""
    return "\n\n".join(f"{p.question}\n{p.worked_answer}"
                       for p in get_domain().held_out_problems(n))


def _windows(tokens: Sequence[int], window: int) -> list[list[int]]:
    return [list(tokens[i:i + window]) for i in range(0, len(tokens), window)
            if len(tokens[i:i + window]) > 1]


def _perplexity(total_nll: float, count: int) -> float:
    if count == 0:
        raise QualityError("no tokens to score")
    mean = total_nll / count
    return math.exp(mean) if math.isfinite(mean) else math.nan


def gguf_perplexity(model_path: Path, text: str | None = None, *, lora_path: Path | None = None,
                    window: int = WINDOW, n_threads: int | None = None) -> float:
    """Perplexity of a GGUF model (optionally with a LoRA GGUF) under llama.cpp."""
    import numpy as np

    llm = load_llama(model_path, lora_path=lora_path, n_ctx=window, logits_all=True,
                     n_threads=n_threads)
    try:
        tokens = llm.tokenize((text or held_out_text()).encode(), add_bos=False, special=False)
        total, count = 0.0, 0
        for chunk in _windows(tokens, window):
            llm.reset()
            llm.eval(chunk)
            logits = np.asarray(llm.scores[:len(chunk)], dtype=np.float32)
            peak = logits.max(axis=-1, keepdims=True)
            logz = (peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=-1)))
            targets = np.asarray(chunk[1:])
            nll = logz[:-1] - logits[np.arange(len(chunk) - 1), targets]
            total += float(nll.sum())
            count += len(targets)
    finally:
        llm.close()
    return _perplexity(total, count)


def hf_perplexity(model: Any, tokenizer: Any, text: str | None = None, *,
                  window: int = WINDOW) -> float:
    """Perplexity of a loaded transformers (or gptqmodel) causal LM on the same windows."""
    import torch

    ids = tokenizer(text or held_out_text(), add_special_tokens=False)["input_ids"]
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.inference_mode():
        for chunk in _windows(ids, window):
            input_ids = torch.tensor([chunk], device=device)
            logits = model(input_ids=input_ids).logits.float()[0, :-1]
            nll = torch.nn.functional.cross_entropy(logits, input_ids[0, 1:], reduction="sum")
            total += float(nll)
            count += len(chunk) - 1
    return _perplexity(total, count)


def hf_dir_perplexity(model_dir: Path, text: str | None = None, *,
                      dtype: ComputeDtype | str | None = None) -> float:
    """Perplexity of a Hugging Face model directory, loaded with transformers and computed in
    ``dtype`` (default: what ``quanta.precision`` chooses for this device)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from quanta.precision import resolve

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=resolve(dtype).torch_dtype)
    model.eval()
    return hf_perplexity(model, tokenizer, text)


def load_llama(model_path: Path, *, lora_path: Path | None = None, n_ctx: int = 2048,
               logits_all: bool = False, n_threads: int | None = None) -> Any:
    """A ``llama_cpp.Llama``; a file llama.cpp cannot read raises CorruptGGUFError."""
    import quantize.llama_cpp_tools  # noqa: F401  (sets OMP_WAIT_POLICY before llama_cpp loads)

    check_gguf(model_path)
    if lora_path is not None:
        check_gguf(lora_path)
    from llama_cpp import Llama

    try:
        return Llama(model_path=str(model_path), lora_path=str(lora_path) if lora_path else None,
                     n_ctx=n_ctx, logits_all=logits_all, verbose=False, seed=0,
                     n_threads=n_threads or decode_threads(model_path),
                     n_threads_batch=os.cpu_count() or 1)
    except (ValueError, RuntimeError) as exc:
        bad = lora_path if lora_path else model_path
        raise CorruptGGUFError(f"llama.cpp cannot load {bad}: {exc}") from exc


SMALL_MODEL_BYTES = 1 << 30


def decode_threads(model_path: Path) -> int:
    """Threads for token-by-token decoding (prompts and perplexity use every core).

    With ``OMP_WAIT_POLICY=PASSIVE`` (needed on shared cores) each op's thread hand-off
    costs a sleep/wake; for a small model that costs more than the op: SmolLM2 q4_k_m
    decodes at ~150 tokens/s on 1 thread and ~45 on 2 (measured on 2 cores).
    """
    cores = os.cpu_count() or 1
    return 1 if Path(model_path).stat().st_size < SMALL_MODEL_BYTES else min(cores, 8)


GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Cheap structural check before handing a file to llama.cpp (which may abort on garbage)."""
    path = Path(path)
    if not path.is_file():
        raise CorruptGGUFError(f"no such GGUF file: {path}")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8 or head[:4] != GGUF_MAGIC:
        raise CorruptGGUFError(f"{path} is not a GGUF file (bad magic {head[:4]!r})")
    version = int.from_bytes(head[4:8], "little")
    if version not in (2, 3):
        raise CorruptGGUFError(f"{path}: unsupported GGUF version {version}")


@dataclass
class Quality:
    """What every export row records in ``metrics``."""

    perplexity: float
    reference_perplexity: float
    bytes: int
    engine: str
    reference: str

    @property
    def perplexity_ratio(self) -> float:
        return self.perplexity / self.reference_perplexity

    def check(self) -> Quality:
        for name in ("perplexity", "reference_perplexity"):
            value = getattr(self, name)
            if not (isinstance(value, float) and math.isfinite(value) and value > 0):
                raise QualityError(f"{name} is {value!r}: the export is broken; not registered")
        return self

    def as_metrics(self) -> dict[str, Any]:
        return {"perplexity": round(self.perplexity, 4),
                "reference_perplexity": round(self.reference_perplexity, 4),
                "perplexity_ratio": round(self.perplexity_ratio, 5),
                "bytes": self.bytes, "engine": self.engine, "reference": self.reference,
                "eval_text": f"physics held-out worked answers (n={HELD_OUT_PROBLEMS})",
                "window": WINDOW}


def path_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size

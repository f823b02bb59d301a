"""GPTQ quantization, run inside the GPTQ environment (``.venv-gptq``) as a subprocess.

gptqmodel 7.6 pins numpy 2.2.6 and needs torch<2.14, so it lives in its own venv; the
exporter (``quantize.gptq``) calls ``<venv>/bin/python -m quantize.gptq_worker ...`` and
reads back a JSON result. Two commands:

* ``quantize``: calibrate and quantize a merged model, computing in ``--dtype`` (chosen by
  ``quanta.precision`` in the main environment), save it in the standard GPTQ checkpoint
  format, and score perplexity of it and of the unquantized model on the same text.
* ``generate``: load a GPTQ directory and greedily complete a chat prompt (smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")  # 2 cores: else "Virtual pool" refuses
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def calibration_texts(tokenizer: Any, path: Path, samples: int) -> list[str]:
    """Chat examples rendered with the model's own template (what the adapter trained on),
    less a BOS the template writes where the tokenizer adds one itself (Gemma's)."""
    bos = tokenizer.bos_token
    adds_bos = bool(bos) and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]
    texts: list[str] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        messages = record.get("messages")
        if messages:
            text = tokenizer.apply_chat_template(messages, tokenize=False)
            texts.append(text[len(bos):] if adds_bos and text.startswith(bos) else text)
        elif record.get("text"):
            texts.append(record["text"])
        if len(texts) >= samples:
            break
    if not texts:
        raise SystemExit(f"no calibration examples in {path}")
    return texts


def check_gptq_config(out_dir: Path) -> dict[str, Any]:
    """The saved config must carry what vLLM and transformers look for."""
    config = json.loads((out_dir / "config.json").read_text())
    qc = config.get("quantization_config") or {}
    expected = {"quant_method": "gptq", "checkpoint_format": "gptq", "sym": True,
                "desc_act": False}
    wrong = {k: qc.get(k) for k, v in expected.items() if qc.get(k) != v}
    if wrong:
        raise SystemExit(f"unexpected GPTQ config fields {wrong}; full config: {qc}")
    return qc


def store_as_source(out_dir: Path, compute: Any, storage: Any) -> None:
    """Computed in ``compute``, stored as the source model is (bf16): rewrite the saved
    tensors left unquantized (embeddings, norms, head), which fp32 compute would double
    in size. Quantized tensors (int weights, fp16 scales) are already their own dtypes."""
    if compute == storage:
        return
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    for path in out_dir.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
        tensors = load_file(path)
        if any(t.dtype == compute for t in tensors.values()):
            save_file({k: v.to(storage) if v.dtype == compute else v
                       for k, v in tensors.items()}, str(path), metadata=metadata)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text())
    name = str(storage).removeprefix("torch.")
    config.update({k: name for k in ("dtype", "torch_dtype") if k in config})
    config_path.write_text(json.dumps(config, indent=2))


def quantize(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from gptqmodel import GPTQModel, QuantizeConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from quanta.precision import storage_dtype, torch_dtype
    from quantize.quality import hf_perplexity

    torch.manual_seed(0)
    dtype = torch_dtype(args.dtype)
    model_dir, out_dir = Path(args.model), Path(args.out)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = calibration_texts(tokenizer, Path(args.calibration), args.samples)
    eval_text = Path(args.eval_text).read_text() if args.eval_text else None

    started = time.perf_counter()
    config = QuantizeConfig(bits=args.bits, group_size=args.group_size, desc_act=False, sym=True)
    model = GPTQModel.load(str(model_dir), config, dtype=dtype)
    model.quantize(texts, batch_size=args.batch_size, tokenizer=tokenizer)
    model.save(str(out_dir))
    store_as_source(out_dir, dtype, torch_dtype(storage_dtype(model_dir)))
    tokenizer.save_pretrained(out_dir)
    quantize_s = time.perf_counter() - started
    del model
    qc = check_gptq_config(out_dir)

    result: dict[str, Any] = {"quantize_seconds": round(quantize_s, 1),
                              "calibration_samples": len(texts), "quantization_config": qc,
                              "compute_dtype": args.dtype}
    if args.eval_text is not None:
        reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
        result["reference_perplexity"] = hf_perplexity(reference, tokenizer, eval_text)
        del reference
        quantized = GPTQModel.load(str(out_dir), dtype=dtype)
        result["perplexity"] = hf_perplexity(quantized.model, tokenizer, eval_text)
    return result


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """Greedy completion; ``--loader transformers`` proves the checkpoint loads the way
    vLLM and plain transformers users load it (quantization_config in config.json)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from quanta.precision import torch_dtype

    dtype = torch_dtype(args.dtype)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if args.loader == "transformers":
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).eval()
    else:
        from gptqmodel import GPTQModel

        model = GPTQModel.load(args.model, dtype=dtype)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": args.prompt}],
                                        add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)["input_ids"].to(model.device)
    started = time.perf_counter()
    out = model.generate(input_ids=ids, max_new_tokens=args.max_tokens, do_sample=False)
    seconds = time.perf_counter() - started
    new = out[0, ids.shape[1]:]
    return {"text": tokenizer.decode(new, skip_special_tokens=True), "tokens": len(new),
            "seconds": round(seconds, 3), "loader": args.loader,
            "linear_class": type(_first_linear(model)).__name__}


def answers(args: argparse.Namespace) -> dict[str, Any]:
    """Greedy answers to chat conversations (a JSON list), loaded by gptqmodel, with
    calculator decoding when asked: how export accuracy is measured for GPTQ."""
    from gptqmodel import GPTQModel
    from transformers import AutoTokenizer

    from quanta.generation import greedy_answers
    from quanta.precision import torch_dtype

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = GPTQModel.load(args.model, dtype=torch_dtype(args.dtype))
    conversations = json.loads(Path(args.conversations).read_text())
    started = time.perf_counter()
    texts = greedy_answers(model.model, tokenizer, conversations, args.max_tokens,
                           calculator=args.calculator)
    return {"answers": texts, "seconds": round(time.perf_counter() - started, 1)}


def _first_linear(model: Any) -> Any:
    """The first quantized projection of the first decoder layer (its class names the
    kernel GPTQModel chose), whatever the architecture calls it."""
    inner = getattr(model, "model", model)  # GPTQModel wraps the transformers model
    for name, module in inner.named_modules():
        if ".layers.0." in f".{name}." and not list(module.children()) and hasattr(
                module, "qweight"):
            return module
    raise LookupError("no quantized layer in the first decoder layer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quantize.gptq_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quantize")
    q.add_argument("--model", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--calibration", required=True)
    q.add_argument("--bits", type=int, default=4)
    q.add_argument("--group-size", type=int, default=128)
    q.add_argument("--samples", type=int, default=64)
    q.add_argument("--batch-size", type=int, default=8)
    q.add_argument("--eval-text")
    g = sub.add_parser("generate")
    g.add_argument("--model", required=True)
    g.add_argument("--prompt", required=True)
    g.add_argument("--max-tokens", type=int, default=32)
    g.add_argument("--loader", choices=("gptqmodel", "transformers"), default="gptqmodel")
    a = sub.add_parser("answers")
    a.add_argument("--model", required=True)
    a.add_argument("--conversations", required=True, help="a JSON list of chat conversations")
    a.add_argument("--max-tokens", type=int, default=128)
    a.add_argument("--calculator", action="store_true")
    for p in (q, g, a):
        p.add_argument("--result", required=True, help="where to write the JSON result")
        p.add_argument("--dtype", default="float32", choices=("bfloat16", "float16", "float32"),
                       help="compute dtype (quanta.precision decides in the main environment)")
    args = parser.parse_args(argv)
    commands = {"quantize": quantize, "generate": generate, "answers": answers}
    result = commands[args.command](args)
    Path(args.result).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Micro-benchmark: vLLM's CPU LoRA ops vs Quanta's grouped ones (serve.lora_ops).

Times ``add_lora_linear`` per call for SmolLM2-135M's LoRA layers (hidden 576; qkv
576/192/192; o 576; gate_up 2x1536; down 1536->576), rank 16, 8 adapter slots, on one
thread by default (steadier on a shared host; the engine runs its ops on its OpenMP
threads):

    .venv/bin/python -m bench.lora_ops [--dtype bf16] [--threads 1] [--repeat 5]
        [--path auto|grouped|batched]

``--path`` forces the grouped wrapper's linear path (``auto``: its own choice), to check
the thresholds of ``GroupedPunicaWrapperCPU._use_batched`` on a host.

Batches: decode of 16 tokens with one adapter, with 8 adapters interleaved, without any
adapter; a prefill of 16 sequences of 64 tokens, 8 adapters. Every batch's slots are all
in use (``--max-loras 8``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from vllm.lora.layers.utils import LoRAMapping
from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

from serve.lora_ops import GroupedPunicaWrapperCPU

HIDDEN, RANK, SLOTS = 576, 16, 8
# name: (input size, output slices)
LAYERS = {"qkv": (576, (576, 192, 192)), "o": (576, (576,)),
          "gate_up": (576, (1536, 1536)), "down": (1536, (576,))}


def batches() -> dict[str, LoRAMapping]:
    decode_mixed = [1 + i % SLOTS for i in range(16)]
    prefill = [1 + i % SLOTS for i in range(16) for _ in range(64)]
    return {
        "decode 16, 1 adapter": LoRAMapping([3] * 16, [3] * 16, is_prefill=True),
        "decode 16, 8 adapters": LoRAMapping(decode_mixed, decode_mixed, is_prefill=True),
        "decode 16, base only": LoRAMapping([0] * 16, [0] * 16, is_prefill=True),
        "prefill 16x64, 8 adapters": LoRAMapping(prefill, decode_mixed, is_prefill=True),
    }


def per_call_us(fn: Callable[[], None], repeat: int, min_time: float = 0.05) -> float:
    """Median over ``repeat`` rounds of the mean time per call, in microseconds."""
    fn()
    calls = 1
    while True:  # calls per round: enough for min_time
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - started
        if elapsed >= min_time:
            break
        calls *= 2
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - started) / calls)
    return statistics.median(rounds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--path", choices=["auto", "grouped", "batched"], default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]

    weights = {}
    for name, (size_in, slices) in LAYERS.items():
        a = tuple(torch.randn(SLOTS, 1, RANK, size_in).to(dtype) for _ in slices)
        b = tuple(torch.randn(SLOTS, 1, size, RANK).to(dtype) for size in slices)
        weights[name] = (size_in, slices, a, b)
    layout: list[int | None] = list(range(1, SLOTS + 1))

    print(f"add_lora_linear per call, {args.dtype}, {args.threads} thread(s), "
          f"rank {RANK}, {SLOTS} slots, path {args.path}; us (vLLM / grouped / speedup)")
    for batch, mapping in batches().items():
        wrappers = {}
        for key, cls in (("vllm", PunicaWrapperCPU), ("grouped", GroupedPunicaWrapperCPU)):
            wrapper = cls(2048, 256, "cpu")
            if args.path == "grouped":
                wrapper.BATCHED_MIN_GROUPS = 10**9
            elif args.path == "batched":
                wrapper.BATCHED_MIN_GROUPS, wrapper.BATCHED_MAX_PADDING = 1, 10.0**9
            wrapper.update_metadata(mapping, layout, SLOTS + 1, 49152)
            wrappers[key] = wrapper
        tokens = len(mapping.index_mapping)
        totals = {"vllm": 0.0, "grouped": 0.0}
        cells = []
        for name, (size_in, slices, a, b) in weights.items():
            x = torch.randn(tokens, size_in).to(dtype)
            y = torch.zeros(tokens, sum(slices), dtype=dtype)
            times = {}
            for key, wrapper in wrappers.items():
                def call(wrapper: PunicaWrapperCPU = wrapper, x: torch.Tensor = x,
                         y: torch.Tensor = y, a: tuple = a, b: tuple = b,
                         slices: tuple = slices) -> None:
                    wrapper.add_lora_linear(y, x, a, b, 1.0, slices)
                times[key] = per_call_us(call, args.repeat)
                totals[key] += times[key]
            cells.append(f"{name} {times['vllm']:.0f}/{times['grouped']:.0f}/"
                         f"{times['vllm'] / times['grouped']:.1f}x")
        print(f"  {batch:27s} " + "  ".join(cells))
        print(f"  {'':27s} one decoder layer (4 calls): {totals['vllm']:.0f} us / "
              f"{totals['grouped']:.0f} us = {totals['vllm'] / totals['grouped']:.1f}x; "
              f"30 layers: {30 * totals['vllm'] / 1e3:.1f} ms / "
              f"{30 * totals['grouped'] / 1e3:.1f} ms")


if __name__ == "__main__":
    main()

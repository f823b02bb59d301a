"""Grouped LoRA ops (serve.lora_ops) against vLLM's CPU punica wrapper and a dense reference."""

from __future__ import annotations

import zlib

import pytest

pytest.importorskip("vllm")

import torch
from vllm.lora.layers.utils import LoRAMapping
from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

from serve import lora_ops
from serve.lora_ops import GroupedPunicaWrapperCPU, group_rows

SLOTS = 4  # --max-loras: the stacked weights hold this many adapters
HIDDEN = 576
VOCAB = 320
SLICES = {"one": (576,), "qkv": (576, 192, 192), "gate_up": (1536, 1536)}
# Sequences' adapter ids (0: the base model) for each mix; a sequence's tokens share it.
MIXES = {
    "base": [0, 0, 0, 0, 0],
    "one": [3, 3, 3, 3, 3],
    "mixed": [2, 0, 2, 0, 0],
    "four": [1, 2, 3, 4, 1, 3, 2, 4],
    "three+base": [1, 0, 4, 2, 4, 0, 1],
}
PREFILL_LENGTHS = [5, 9, 1, 7, 3, 6, 2, 4]
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2}


def _generator(*case: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(case).encode()))


def _mapping(seq_ids: list[int], prefill: bool) -> LoRAMapping:
    """vLLM's mapping: per token (index) and per sampled row (prompt), by adapter id."""
    if not prefill:
        return LoRAMapping(seq_ids, seq_ids, is_prefill=False)
    tokens = [i for i, n in zip(seq_ids, PREFILL_LENGTHS, strict=False) for _ in range(n)]
    return LoRAMapping(tokens, seq_ids, is_prefill=True)


def _slot_layout(seq_ids: list[int]) -> list[int | None]:
    """Slots of the adapters in use; the last slot stays empty while base rows are batched.

    vLLM's ops give a base row (slot -1) the last slot's adapter: with that slot empty
    (zero weights) its result is right, so ours can be compared with it.
    """
    if 0 in seq_ids:
        return [2, 1, 4, None]
    return [2, 1, 4, 3]


def _wrappers(seq_ids: list[int], prefill: bool, layout: list[int | None],
              path: str = "auto") -> tuple[PunicaWrapperCPU, GroupedPunicaWrapperCPU]:
    """vLLM's wrapper and ours, given one mapping; ``path`` forces ours' linear path."""
    mapping = _mapping(seq_ids, prefill)
    ours = GroupedPunicaWrapperCPU(4096, 64, "cpu")
    if path == "grouped":
        ours.BATCHED_MIN_GROUPS = 10**9
    elif path == "batched":
        ours.BATCHED_MIN_GROUPS, ours.BATCHED_MAX_PADDING = 1, 10.0**9
    theirs = PunicaWrapperCPU(4096, 64, "cpu")
    for wrapper in (theirs, ours):
        wrapper.update_metadata(mapping, layout, SLOTS + 1, VOCAB)
    return theirs, ours


def _weights(layout: list[int | None], shape: tuple[int, int], dtype: torch.dtype,
             slices: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Stacked weights ``(SLOTS, 1, *shape)`` per slice, zero where a slot is empty."""
    stacked = []
    for _ in range(slices):
        w = torch.randn(SLOTS, 1, *shape, generator=gen) / shape[1] ** 0.5
        for slot, lora_id in enumerate(layout):
            if lora_id is None:
                w[slot] = 0
        stacked.append(w.to(dtype))
    return tuple(stacked)


def _dense_reference(y: torch.Tensor, x: torch.Tensor, slots: torch.Tensor,
                     a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...],
                     scale: float, output_slices: tuple[int, ...]) -> torch.Tensor:
    """Every slot's delta on every row, each row keeping its own slot's (none for -1)."""
    out = y.clone()
    for slot in range(SLOTS):
        keep = (slots == slot).unsqueeze(1)
        col = 0
        for a_i, b_i, size in zip(a, b, output_slices, strict=True):
            buf = (x.float() @ a_i[slot, 0].float().t() * scale).to(y.dtype)
            delta = buf @ b_i[slot, 0].to(y.dtype).t()
            out[:, col:col + size] += torch.where(keep, delta, torch.zeros_like(delta))
            col += size
    return out


def _close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(actual.float(), expected.float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("prefill", [True, False], ids=["prefill", "decode"])
@pytest.mark.parametrize("mix", list(MIXES))
@pytest.mark.parametrize("slices", list(SLICES))
@pytest.mark.parametrize("rank", [8, 16, 64])
@pytest.mark.parametrize("path", ["grouped", "batched"])
def test_add_lora_linear_matches_vllm(path: str, rank: int, slices: str, mix: str,
                                      prefill: bool, dtype: torch.dtype) -> None:
    gen = _generator(rank, slices, mix, prefill)
    output_slices = SLICES[slices]
    seq_ids = MIXES[mix]
    layout = _slot_layout(seq_ids)
    theirs, ours = _wrappers(seq_ids, prefill, layout, path)
    a = _weights(layout, (rank, HIDDEN), dtype, len(output_slices), gen)
    b = tuple(_weights(layout, (size, rank), dtype, 1, gen)[0] for size in output_slices)
    n = theirs.token_lora_indices.numel()
    x = torch.randn(n, HIDDEN, generator=gen).to(dtype)
    y0 = torch.randn(n, sum(output_slices), generator=gen).to(dtype)
    scale = 0.5 if rank == 16 else 1.0

    y_theirs, y_ours = y0.clone(), y0.clone()
    theirs.add_lora_linear(y_theirs, x, a, b, scale, output_slices)
    ours.add_lora_linear(y_ours, x, a, b, scale, output_slices)

    _close(y_ours, y_theirs, dtype)
    slots = ours.token_lora_indices
    _close(y_ours, _dense_reference(y0, x, slots, a, b, scale, output_slices), dtype)
    base = slots < 0
    assert torch.equal(y_ours[base], y0[base])  # base rows: untouched, bit for bit
    if (~base).any():  # adapter rows did change (so the comparisons above can fail)
        assert (y_ours[~base] - y0[~base]).float().abs().max() > 0.1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("prefill", [True, False], ids=["prefill", "decode"])
@pytest.mark.parametrize("mix", list(MIXES))
@pytest.mark.parametrize("padding", [0, 16, -16], ids=["same", "y-wider", "b-wider"])
def test_add_lora_logits_matches_vllm(mix: str, prefill: bool, dtype: torch.dtype,
                                      padding: int) -> None:
    gen = _generator(mix, prefill, padding)
    rank = 16
    seq_ids = MIXES[mix]
    layout = _slot_layout(seq_ids)
    theirs, ours = _wrappers(seq_ids, prefill, layout)
    a = _weights(layout, (rank, HIDDEN), dtype, 1, gen)[0]
    b = _weights(layout, (VOCAB, rank), dtype, 1, gen)[0]
    rows = len(seq_ids)  # one sampled row per sequence
    x = torch.randn(rows, HIDDEN, generator=gen).to(dtype)
    y0 = torch.randn(rows, VOCAB + padding, generator=gen).to(dtype)

    y_theirs, y_ours = y0.clone(), y0.clone()
    theirs.add_lora_logits(y_theirs, x, a, b, 1.0)
    ours.add_lora_logits(y_ours, x, a, b, 1.0)

    _close(y_ours, y_theirs, dtype)
    base = ours.sampler_indices < 0
    assert torch.equal(y_ours[base], y0[base])
    if (~base).any():
        assert (y_ours[~base] - y0[~base]).float().abs().max() > 0.1
    if padding > 0:  # columns past B's vocabulary get nothing
        assert torch.equal(y_ours[:, VOCAB:], y0[:, VOCAB:])


@pytest.mark.parametrize("prefill", [True, False], ids=["prefill", "decode"])
@pytest.mark.parametrize("mix", ["mixed", "four", "three+base"])
def test_add_shrink_and_expand_match_vllm(mix: str, prefill: bool) -> None:
    """The fully sharded / tensor-parallel layers' path: shrink into a buffer, expand."""
    gen = torch.Generator().manual_seed(7)
    rank, output_slices = 8, SLICES["qkv"]
    seq_ids = MIXES[mix]
    layout = _slot_layout(seq_ids)
    theirs, ours = _wrappers(seq_ids, prefill, layout)
    a = _weights(layout, (rank, HIDDEN), torch.float32, 3, gen)
    b = tuple(_weights(layout, (size, rank), torch.float32, 1, gen)[0]
              for size in output_slices)
    n = theirs.token_lora_indices.numel()
    x = torch.randn(n, HIDDEN, generator=gen)
    y0 = torch.randn(n, 64 + sum(output_slices), generator=gen)

    buffers = []
    for wrapper in (theirs, ours):
        buffer = torch.zeros(3, n, rank)
        wrapper.add_shrink(buffer, x, a, 2.0)
        buffers.append(buffer)
    _close(buffers[1], buffers[0], torch.float32)
    assert buffers[1].abs().max() > 0.1

    y_theirs, y_ours = y0.clone(), y0.clone()
    theirs.add_expand(y_theirs, buffers[1], b, output_slices, offset_start=64)
    ours.add_expand(y_ours, buffers[1], b, output_slices, offset_start=64)
    _close(y_ours, y_theirs, torch.float32)
    assert torch.equal(y_ours[:, :64], y0[:, :64])


@pytest.mark.parametrize("path", ["grouped", "batched"])
def test_add_inputs_false_assigns(path: str) -> None:
    """vLLM's dual-stream path asks for the delta alone, into a zeroed tensor."""
    gen = _generator(path)
    seq_ids = MIXES["three+base"]
    layout = _slot_layout(seq_ids)
    _, ours = _wrappers(seq_ids, False, layout, path)
    output_slices = SLICES["qkv"]
    a = _weights(layout, (8, HIDDEN), torch.float32, 3, gen)
    b = tuple(_weights(layout, (size, 8), torch.float32, 1, gen)[0] for size in output_slices)
    x = torch.randn(len(seq_ids), HIDDEN, generator=gen)
    added = torch.zeros(len(seq_ids), sum(output_slices))
    ours.add_lora_linear(added, x, a, b, 1.0, output_slices)
    assigned = torch.zeros_like(added)  # what the caller passes: zeros ...
    assigned[ours.token_lora_indices >= 0] = 7.0  # ... here not, to see them overwritten
    ours.add_lora_linear(assigned, x, a, b, 1.0, output_slices, add_inputs=False)
    torch.testing.assert_close(assigned, added)
    assert added.abs().max() > 0.1


def test_vllm_applies_the_last_slot_to_base_rows() -> None:
    """vLLM 0.32's CPU ops index the weights with slot -1: the last slot's adapter.

    convert_mapping gives a base token (adapter id 0) slot -1, documented as "no lora";
    the torch ops gather ``weights[-1]``. With every slot in use, a base request
    batched next to adapter requests gets the last slot's delta, in prefill (what the v1
    engine always uses: ``no_lora`` only skips batches without any adapter) and decode.
    Ours leaves those rows alone.
    """
    gen = torch.Generator().manual_seed(0)
    seq_ids = [1, 0, 2]
    layout = [1, 2, 3, 4]  # all four slots hold adapters: the last holds id 4
    output_slices = (576,)
    a = _weights(layout, (8, HIDDEN), torch.float32, 1, gen)
    b = _weights(layout, (576, 8), torch.float32, 1, gen)
    for prefill, path in ((True, "grouped"), (False, "grouped"), (False, "batched")):
        theirs, ours = _wrappers(seq_ids, prefill, layout, path)
        slots = theirs.token_lora_indices
        assert (slots == -1).any() and not theirs.no_lora
        x = torch.randn(slots.numel(), HIDDEN, generator=gen)
        y0 = torch.zeros(slots.numel(), 576)
        y_theirs, y_ours = y0.clone(), y0.clone()
        theirs.add_lora_linear(y_theirs, x, a, b, 1.0, output_slices)
        ours.add_lora_linear(y_ours, x, a, b, 1.0, output_slices)

        base = slots == -1
        last_slot = torch.full_like(slots, SLOTS - 1)
        wrong = _dense_reference(y0, x, last_slot, a, b, 1.0, output_slices)
        _close(y_theirs[base], wrong[base], torch.float32)  # vLLM: the last adapter
        assert y_theirs[base].abs().max() > 0.1
        assert torch.equal(y_ours[base], y0[base])  # ours: nothing
        _close(y_ours[~base], y_theirs[~base], torch.float32)  # adapter rows agree


def test_group_rows_uses_views_for_runs() -> None:
    groups = group_rows(torch.tensor([2, 2, -1, 0, 2, 1, 1]))
    assert [slot for slot, _ in groups] == [0, 1, 2]
    assert groups[0][1] == slice(3, 4)
    assert groups[1][1] == slice(5, 7)
    assert groups[2][1].tolist() == [0, 1, 4]
    assert group_rows(torch.tensor([3, 3, 3])) == [(3, slice(0, 3))]  # one matmul, no index
    assert group_rows(torch.tensor([-1, -1])) == []  # nothing to do
    assert group_rows(torch.tensor([], dtype=torch.long)) == []


def test_path_choice() -> None:
    """One adapter: grouped; several with rows in balance (decode): batched; several with
    one far larger (a long prefill beside short ones): grouped, not padded to it."""
    ours = GroupedPunicaWrapperCPU(4096, 64, "cpu")
    layout: list[int | None] = [1, 2, 3, 4]
    cases = [([1] * 16, False), ([1, 2] * 8, True), ([1, 2, 3, 4] * 4, True),
             ([1] * 60 + [2, 3, 4], False), ([0, 0, 1, 2], True)]
    for tokens, batched in cases:
        ours.update_metadata(LoRAMapping(tokens, tokens), layout, SLOTS + 1, VOCAB)
        assert (ours._batch is not None) is batched, tokens


def test_prepared_weights_follow_vllms_writes() -> None:
    """Weights are prepared once per layer and rebuilt when vLLM writes a slot."""
    gen = _generator("prepared")
    layout: list[int | None] = [1, 2, 3, 4]
    seq_ids = [1, 2, 3, 4]
    theirs, ours = _wrappers(seq_ids, False, layout, "batched")
    a = _weights(layout, (8, HIDDEN), torch.float32, 1, gen)
    b = _weights(layout, (576, 8), torch.float32, 1, gen)
    x = torch.randn(4, HIDDEN, generator=gen)
    for step in range(2):
        if step:
            a[0][2] = torch.randn(1, 8, HIDDEN, generator=gen)  # as set_lora copies in
        y_ours, y_theirs = torch.zeros(4, 576), torch.zeros(4, 576)
        ours.add_lora_linear(y_ours, x, a, b, 1.0, (576,))
        theirs.add_lora_linear(y_theirs, x, a, b, 1.0, (576,))
        torch.testing.assert_close(y_ours, y_theirs, rtol=1e-4, atol=1e-4)
    assert len(ours._prepared) == 1


def test_mapping_change_regroups() -> None:
    ours = GroupedPunicaWrapperCPU(64, 8, "cpu")
    ours.update_metadata(_mapping([1, 1], prefill=False), [1, None, None, None], SLOTS + 1,
                         VOCAB)
    assert ours._token_groups == [(0, slice(0, 2))]
    ours.update_metadata(_mapping([0, 0, 0], prefill=True), [1, None, None, None],
                         SLOTS + 1, VOCAB)
    assert ours._token_groups == [] and ours._sampler_groups == []


@pytest.fixture
def cpu_platform(monkeypatch: pytest.MonkeyPatch) -> type:
    """The CPU platform's class, its ``get_punica_wrapper`` restored after the test."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        pytest.skip("vLLM's platform here is not CPU")
    cls = type(current_platform)
    original = next(c.__dict__["get_punica_wrapper"] for c in cls.__mro__
                    if "get_punica_wrapper" in c.__dict__)
    monkeypatch.setattr(cls, "get_punica_wrapper", original)
    return cls


def test_install_makes_vllm_build_the_grouped_wrapper(cpu_platform: type) -> None:
    from vllm.lora.punica_wrapper import get_punica_wrapper

    assert cpu_platform.get_punica_wrapper() == lora_ops.VLLM_CPU_WRAPPER
    assert lora_ops.install()
    assert lora_ops.install()  # idempotent
    assert cpu_platform.get_punica_wrapper() == lora_ops.GROUPED_CPU_WRAPPER
    wrapper = get_punica_wrapper(64, max_batches=8, device="cpu")
    assert type(wrapper) is GroupedPunicaWrapperCPU


@pytest.mark.parametrize(("ops", "expected"), [(None, lora_ops.GROUPED_CPU_WRAPPER),
                                               ("vllm", lora_ops.VLLM_CPU_WRAPPER)])
def test_register_installs_unless_vllm_ops(cpu_platform: type, quanta_env,  # type: ignore[no-untyped-def]
                                           monkeypatch: pytest.MonkeyPatch, ops: str | None,
                                           expected: str) -> None:
    from vllm.lora.resolver import LoRAResolverRegistry

    from serve import engine_lora, lora_resolver

    monkeypatch.setattr(engine_lora, "install", lambda: None)  # not this test's subject
    monkeypatch.delenv("QUANTA_LORA_OPS", raising=False)
    quanta_env()
    lora_resolver.register()  # not under `quanta serve`: nothing
    assert cpu_platform.get_punica_wrapper() == lora_ops.VLLM_CPU_WRAPPER
    quanta_env(QUANTA_LORA_RESOLVER="registry", **({"QUANTA_LORA_OPS": ops} if ops else {}))
    lora_resolver.register()
    LoRAResolverRegistry.resolvers.pop(lora_resolver.RESOLVER_NAME, None)
    assert cpu_platform.get_punica_wrapper() == expected

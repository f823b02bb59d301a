"""Grouped (SGMV-style) LoRA ops for vLLM's CPU engine.

vLLM's CPU punica wrapper (``vllm.lora.punica_wrapper.punica_cpu.PunicaWrapperCPU``,
ops in ``vllm.lora.ops.torch_ops``) computes every LoRA layer per token: for each
slice it gathers the weights of every token's adapter (``lora_b_weights[indices]``, a
``(tokens, out, r)`` copy), casts them, and runs a batched einsum, about 14 small ops
per layer whatever the batch holds. Punica and S-LoRA group the tokens by adapter
instead (SGMV): each adapter's rows get one plain matrix product with its weights.

``GroupedPunicaWrapperCPU`` does that on top of the parent's metadata:

* ``update_metadata`` (called by vLLM only when the batch's mapping or the slot layout
  changes) groups the token rows, and the sampler rows, by adapter slot once. A slot
  whose rows form one run (a prefill, or a batch where every token uses one adapter)
  is a ``slice``: views, no index ops. Other slots keep a row index tensor (their rows
  of ``x`` and ``y`` are gathered with ``index_select``, ``y``'s written back with
  ``index_copy_``). Rows without an adapter (slot -1) are in no group, so a batch
  without adapters does nothing.
* ``add_lora_linear`` (every LoRA linear layer, packed qkv and gate_up included) uses
  weights prepared once per layer (every slice's A side by side in float32 with the
  scale folded in, B block diagonal over the slices), so each slot takes one shrink
  and one expand for all slices. No weights are copied per token.
* Several adapters with rows in balance (a decode batch mixing adapters) make per-slot
  products too small to pay for their per-op overhead: there the rows are gathered
  into one padded ``(adapters, rows, in)`` batch and ``add_lora_linear`` runs one
  ``bmm`` shrink, one ``bmm`` expand and one ``index_add_`` (SGMV with ``bmm``).
* ``add_lora_logits``, ``add_shrink`` and ``add_expand`` (the last two are only used by
  the fully sharded / tensor-parallel layers) group the same way. ``add_lora_embedding``
  and ``apply_lora_full_linear`` stay the parent's.

Numerics follow vLLM's CPU ops: the shrink runs in float32 (vLLM's buffer is float32:
inputs and A are cast to it, then multiplied by ``scale``), the expand in ``y``'s dtype
(vLLM casts the buffer and B to it, then adds). With bfloat16 ``addmm_`` rounds the
product and the sum once where vLLM rounds twice, a difference within bf16's precision.

Rows whose slot is -1 get nothing. vLLM's gather ops (0.32) index the stacked weights
with the raw per-token slot, so a -1 row picks ``weights[-1]``: the last slot. When that
slot holds an adapter (with ``--max-loras 1``, whenever one is loaded), a base-model
request batched next to an adapter's request gets that adapter's delta: on the v1
engine, which always builds prefill metadata, whenever the batch mixes base and adapter
tokens (``no_lora`` only skips batches without any adapter token). The parent's
``add_lora_embedding`` (adapters with embedding weights) still has it.

The groups are Python lists built from tensor values, so the ops rely on eager
execution; vLLM's CPU platform turns compilation off whenever LoRA is enabled
(``CompilationMode.NONE`` in ``CpuPlatform.check_and_update_config``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

if TYPE_CHECKING:
    from vllm.lora.layers import LoRAMapping

VLLM_CPU_WRAPPER = "vllm.lora.punica_wrapper.punica_cpu.PunicaWrapperCPU"
GROUPED_CPU_WRAPPER = "serve.lora_ops.GroupedPunicaWrapperCPU"

# Rows of one adapter slot: a contiguous run (views), or row indices (gather/scatter).
Rows = slice | torch.Tensor
RowGroups = list[tuple[int, Rows]]


def group_rows(indices: torch.Tensor) -> RowGroups:
    """Group row numbers by adapter slot: ``[(slot, rows), ...]``, slot -1 left out.

    ``rows`` is a ``slice`` when the slot's rows are one contiguous run, else a sorted
    int64 index tensor. A handful of tensor ops and one host sync per call, whatever
    the number of slots; meant to run once per mapping change, not per layer.
    """
    if indices.numel() == 0:
        return []
    order = torch.argsort(indices, stable=True)
    slots, counts = torch.unique_consecutive(indices[order], return_counts=True)
    ends = torch.cumsum(counts, 0)
    starts = ends - counts
    # A stable sort keeps each slot's rows ascending: first and last row bound the run.
    firsts = order[starts]
    lasts = order[ends - 1]
    groups: RowGroups = []
    for slot, start, end, first, last in zip(
        slots.tolist(), starts.tolist(), ends.tolist(), firsts.tolist(), lasts.tolist(),
        strict=True,
    ):
        if slot < 0:
            continue
        if last - first + 1 == end - start:
            groups.append((slot, slice(first, last + 1)))
        else:
            groups.append((slot, order[start:end]))
    return groups


def _take(t: torch.Tensor, rows: Rows) -> torch.Tensor:
    return t[rows] if isinstance(rows, slice) else t.index_select(0, rows)


def _put(y: torch.Tensor, rows: Rows, target: torch.Tensor) -> None:
    """Write back rows taken with ``_take`` (a slice's rows are views: nothing to do).

    Taking whole rows, updating their column ranges and copying them back costs two
    contiguous row copies per slot; ``index_add_`` into a column range of ``y`` would
    copy that whole range twice per slice.
    """
    if not isinstance(rows, slice):
        y.index_copy_(0, rows, target)


def _accumulate(out: torch.Tensor, buf: torch.Tensor, w: torch.Tensor,
                add_inputs: bool) -> None:
    """``out (+)= buf @ w.T`` in place (``out`` may be a column range)."""
    if add_inputs:
        out.addmm_(buf, w.t())
    else:
        out.copy_(buf @ w.t())


def _slot_weights(stacked: tuple[torch.Tensor, ...], slot: int) -> torch.Tensor:
    """The slot's ``(r_i, in)`` matrices of all slices, stacked along rows (a view if one)."""
    if len(stacked) == 1:
        return stacked[0][slot, 0]
    return torch.cat([w[slot, 0] for w in stacked])


def _shrink(x: torch.Tensor, a: torch.Tensor, scale: float) -> torch.Tensor:
    """``(x @ a.T) * scale`` in float32, as vLLM's float32 shrink buffer holds it."""
    buf = x.to(torch.float32) @ a.to(torch.float32).t()
    if scale != 1.0:
        buf.mul_(scale)
    return buf


@dataclass
class _Batch:
    """One step's adapter rows laid out for batched products: ``groups`` adapter slots
    (``slots``, ascending), each padded to ``width`` rows; ``index`` holds the rows
    (padding repeats a real row), ``valid`` is 0 on padding (None: no padding)."""

    slots: tuple[int, ...]
    width: int
    index: torch.Tensor
    valid: torch.Tensor | None


def batch_rows(groups: RowGroups) -> _Batch:
    slots = tuple(slot for slot, _ in groups)
    rows = [torch.arange(r.start, r.stop) if isinstance(r, slice) else r for _, r in groups]
    width = max(len(r) for r in rows)
    index = torch.stack([torch.cat([r, r[:1].expand(width - len(r))]) for r in rows])
    valid = None
    if any(len(r) < width for r in rows):
        valid = torch.stack([torch.arange(width) < len(r) for r in rows]).to(torch.float32)
        valid = valid.reshape(-1, 1)
    return _Batch(slots, width, index.reshape(-1), valid)


@dataclass
class _Prepared:
    """A layer's stacked weights in the shapes the products take, kept while unchanged.

    ``a``: ``(slots, in, n * r)`` float32, ``scale`` folded in (the float32 shrink);
    ``b``: ``(slots, n * r, sum(out))`` in the output dtype, block diagonal over the
    slices, so one product expands every slice into its column range.
    """

    sources: tuple[weakref.ref, ...]
    versions: tuple[int, ...] | None
    scale: float
    dtype: torch.dtype
    a: torch.Tensor
    b: torch.Tensor
    used: tuple[tuple[int, ...], torch.Tensor, torch.Tensor] | None = None

    def fresh(self, tensors: tuple[torch.Tensor, ...], scale: float,
              dtype: torch.dtype) -> bool:
        return (scale == self.scale and dtype == self.dtype
                and all(ref() is t for ref, t in zip(self.sources, tensors, strict=True))
                and self.versions is not None and self.versions == _versions(tensors))

    def for_slots(self, slots: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """``a`` and ``b`` of these slots only (a copy, kept until the set changes)."""
        if len(slots) == self.a.size(0) and slots == tuple(range(len(slots))):
            return self.a, self.b
        if self.used is None or self.used[0] != slots:
            index = torch.tensor(slots)
            self.used = (slots, self.a.index_select(0, index), self.b.index_select(0, index))
        return self.used[1], self.used[2]


def _versions(tensors: tuple[torch.Tensor, ...]) -> tuple[int, ...] | None:
    """In-place writes bump a tensor's version counter (views share it); inference-mode
    tensors keep none, and then nothing is cached (vLLM's CPU runner creates the stacks
    outside inference mode)."""
    try:
        return tuple(t._version for t in tensors)
    except RuntimeError:
        return None


def prepare(lora_a_stacked: tuple[torch.Tensor, ...], lora_b_stacked: tuple[torch.Tensor, ...],
            output_slices: tuple[int, ...], scale: float, dtype: torch.dtype) -> _Prepared:
    slots = lora_a_stacked[0].size(0)
    a = torch.cat([w[:, 0] for w in lora_a_stacked], dim=1).to(torch.float32)
    if scale != 1.0:
        a = a * scale
    ranks = [w.size(2) for w in lora_a_stacked]
    b = torch.zeros(slots, sum(ranks), sum(output_slices), dtype=dtype)
    row = col = 0
    for w, size, rank in zip(lora_b_stacked, output_slices, ranks, strict=True):
        b[:, row:row + rank, col:col + size] = w[:, 0, :size, :rank].transpose(1, 2)
        row += rank
        col += size
    tensors = (*lora_a_stacked, *lora_b_stacked)
    return _Prepared(tuple(weakref.ref(t) for t in tensors), _versions(tensors), scale, dtype,
                     a.transpose(1, 2).contiguous(), b)


class GroupedPunicaWrapperCPU(PunicaWrapperCPU):
    """``PunicaWrapperCPU`` whose LoRA products run per adapter, not per token.

    A drop-in replacement (``CpuPlatform.get_punica_wrapper`` may name it): same
    metadata, same numerics, products per adapter instead of a per-token weight gather
    and batched einsum. Rows without an adapter (slot -1) are left alone, where vLLM's
    CPU ops would apply the last slot's adapter to them.

    Two layouts of the same products (equal results):

    * grouped: one product per adapter slot over its rows (views when they are one run,
      as in a prefill): best when few adapters each have many rows;
    * batched (SGMV with ``bmm``): every adapter's rows gathered into one padded
      ``(adapters, rows, in)`` batch, one ``bmm`` for the shrink of every slice and one
      for the expand of every slice, scattered back with one ``index_add_``; about six
      ops per layer whatever the number of adapters: best for decode batches.
    """

    # Batched when at least this many adapters share the batch and padding the groups
    # to the largest adds at most this share of rows.
    BATCHED_MIN_GROUPS = 2
    BATCHED_MAX_PADDING = 0.5

    def __init__(self, max_num_batched_tokens: int, max_batches: int,
                 device: torch.device | str, **kwargs: Any) -> None:
        super().__init__(max_num_batched_tokens, max_batches, device, **kwargs)
        self._token_groups: RowGroups = []
        self._sampler_groups: RowGroups = []
        self._batch: _Batch | None = None
        self._prepared: dict[int, _Prepared] = {}
        self._layout: tuple[int | None, ...] = ()

    def update_metadata(self, mapping: LoRAMapping, lora_index_to_id: list[int | None],
                        max_loras: int, vocab_size: int, **kwargs: Any) -> None:
        super().update_metadata(mapping, lora_index_to_id, max_loras, vocab_size, **kwargs)
        self._token_groups = group_rows(self.token_lora_indices)
        self._sampler_groups = group_rows(self.sampler_indices)
        self._batch = batch_rows(self._token_groups) if self._use_batched() else None
        layout = tuple(lora_index_to_id)
        if layout != self._layout:  # vLLM (re)filled or emptied a slot: weights changed
            self._prepared.clear()
            self._layout = layout

    def _use_batched(self) -> bool:
        groups = self._token_groups
        if len(groups) < self.BATCHED_MIN_GROUPS:
            return False
        sizes = [(r.stop - r.start) if isinstance(r, slice) else len(r) for _, r in groups]
        return max(sizes) * len(sizes) <= (1 + self.BATCHED_MAX_PADDING) * sum(sizes)

    def _weights(self, lora_a_stacked: tuple[torch.Tensor, ...],
                 lora_b_stacked: tuple[torch.Tensor, ...], output_slices: tuple[int, ...],
                 scale: float, dtype: torch.dtype) -> _Prepared:
        """The layer's prepared weights, rebuilt only when vLLM wrote into its stacks (a
        slot loaded or reset bumps the tensors' version counters)."""
        key = id(lora_a_stacked[0])
        tensors = (*lora_a_stacked, *lora_b_stacked)
        prepared = self._prepared.get(key)
        if prepared is None or not prepared.fresh(tensors, scale, dtype):
            prepared = prepare(lora_a_stacked, lora_b_stacked, output_slices, scale, dtype)
            self._prepared[key] = prepared
        return prepared

    def add_lora_linear(self, y: torch.Tensor, x: torch.Tensor,
                        lora_a_stacked: tuple[torch.Tensor, ...],
                        lora_b_stacked: tuple[torch.Tensor, ...], scale: float,
                        output_slices: tuple[int, ...], *,
                        buffer: tuple[torch.Tensor, ...] | None = None,
                        **kwargs: Any) -> None:
        """``y[:, slice i] += (x @ A_i[slot].T * scale) @ B_i[slot].T`` per token's slot.

        ``buffer`` is not needed (each slot's float32 shrink result is its own tensor).
        ``add_inputs=False`` (vLLM's dual-stream path, into a zeroed ``y``) assigns.
        """
        assert len(lora_a_stacked) == len(lora_b_stacked) == len(output_slices)
        if not self._token_groups:
            return
        add_inputs = kwargs.get("add_inputs", True)
        y2 = y.view(-1, y.shape[-1])[:, :sum(output_slices)]
        x2 = x.view(-1, x.shape[-1])
        weights = self._weights(lora_a_stacked, lora_b_stacked, output_slices, scale,
                                y.dtype)
        if self._batch is not None:
            self._add_batched(y2, x2, weights, add_inputs)
            return
        for slot, rows in self._token_groups:
            buf = _take(x2, rows).to(torch.float32) @ weights.a[slot]
            target = _take(y2, rows)
            _accumulate(target, buf.to(y.dtype), weights.b[slot].t(), add_inputs)
            _put(y2, rows, target)

    def _add_batched(self, y: torch.Tensor, x: torch.Tensor, weights: _Prepared,
                     add_inputs: bool) -> None:
        batch = self._batch
        assert batch is not None
        a, b = weights.for_slots(batch.slots)
        xs = x.index_select(0, batch.index).to(torch.float32)
        if batch.valid is not None:
            xs.mul_(batch.valid)  # padding rows: nothing to add
        groups = len(batch.slots)
        buf = torch.bmm(xs.view(groups, batch.width, -1), a).to(y.dtype)
        delta = torch.bmm(buf, b).view(groups * batch.width, -1)
        if not add_inputs:
            y.index_fill_(0, batch.index, 0)
        y.index_add_(0, batch.index, delta)

    def add_lora_logits(self, y: torch.Tensor, x: torch.Tensor,
                        lora_a_stacked: torch.Tensor, lora_b_stacked: torch.Tensor,
                        scale: float, *, buffer: torch.Tensor | None = None,
                        **kwargs: Any) -> None:
        """``y += (x @ A[slot].T * scale) @ B[slot].T`` per sampled row's slot.

        Like vLLM's, only the columns ``y`` and B share get the delta (either may carry
        vocabulary padding).
        """
        if not self._sampler_groups:
            return
        y2 = y.view(-1, y.shape[-1])
        x2 = x.view(-1, x.shape[-1])
        common = min(lora_b_stacked.size(-2), y2.size(-1))
        for slot, rows in self._sampler_groups:
            buf = _shrink(_take(x2, rows), lora_a_stacked[slot, 0], scale).to(y.dtype)
            b = lora_b_stacked[slot, 0, :common].to(y.dtype)
            target = _take(y2, rows)
            _accumulate(target[:, :common], buf, b, True)
            _put(y2, rows, target)

    def add_shrink(self, y: tuple[torch.Tensor, ...] | torch.Tensor, x: torch.Tensor,
                   lora_a_stacked: tuple[torch.Tensor, ...], scale: float,
                   **kwargs: Any) -> None:
        """``y[i][rows] = x[rows] @ A_i[slot].T * scale`` (vLLM's CPU shrink assigns).

        Rows without an adapter keep their values: the callers pass zeroed buffers.
        """
        if not self._token_groups:
            return
        x2 = x.view(-1, x.shape[-1])
        ranks = [a.size(2) for a in lora_a_stacked]
        for slot, rows in self._token_groups:
            buf = _shrink(_take(x2, rows), _slot_weights(lora_a_stacked, slot), scale)
            rank_start = 0
            for i, rank in enumerate(ranks):
                out = y[i].view(-1, y[i].shape[-1])[:, :rank]
                part = buf[:, rank_start:rank_start + rank]
                if isinstance(rows, slice):
                    out[rows] = part
                else:
                    out.index_copy_(0, rows, part.to(out.dtype))
                rank_start += rank

    def add_expand(self, y: torch.Tensor, x: tuple[torch.Tensor, ...] | torch.Tensor,
                   lora_b_stacked: tuple[torch.Tensor, ...], output_slices: tuple[int, ...],
                   offset_start: int = 0, add_inputs: bool = True, **kwargs: Any) -> None:
        """``y[rows, slice i] += x[i][rows] @ B_i[slot].T``, slices from ``offset_start``."""
        if not self._token_groups:
            return
        y2 = y.view(-1, y.shape[-1])
        for slot, rows in self._token_groups:
            target = _take(y2, rows)
            col = offset_start
            for i, (b_stacked, size) in enumerate(zip(lora_b_stacked, output_slices,
                                                      strict=True)):
                xi = x[i].view(-1, x[i].shape[-1])
                buf = _take(xi, rows).to(y.dtype)
                b = b_stacked[slot, 0].to(y.dtype)
                _accumulate(target[:, col:col + size], buf, b, add_inputs)
                col += size
            _put(y2, rows, target)


def install() -> bool:
    """Make vLLM's CPU platform build ``GroupedPunicaWrapperCPU``; True if it now does.

    Patches ``get_punica_wrapper`` of the current platform's class, which
    ``vllm.lora.punica_wrapper.punica_selector`` resolves by qualified name when a LoRA
    model manager is created. Only a CPU platform that names vLLM's own CPU wrapper is
    changed (another platform, or a plugin's own wrapper, is left alone). Idempotent.
    """
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return False
    wrapper = current_platform.get_punica_wrapper()
    if wrapper == GROUPED_CPU_WRAPPER:
        return True
    if wrapper != VLLM_CPU_WRAPPER:
        return False

    def get_punica_wrapper(cls: type) -> str:
        return GROUPED_CPU_WRAPPER

    type(current_platform).get_punica_wrapper = classmethod(get_punica_wrapper)  # type: ignore[method-assign,assignment]
    return True

"""Training methods behind one interface (``tune.methods.base.TrainingMethod``).

``sft`` (supervised, assistant-only loss), ``dpo`` (preference pairs) and ``rft``
(reinforcement with a grader as reward, trl's GRPO), like peft's one
module per backend behind one interface; a new method is a sibling module plus a line
in :func:`get_method`.
"""

from __future__ import annotations

from quanta.types import DatasetFormat, MethodType
from tune.methods.base import TrainingMethod


def get_method(type: MethodType | str) -> TrainingMethod:
    """The method called ``type`` (imported lazily: each pulls trl)."""
    kind = MethodType(type)
    if kind is MethodType.SUPERVISED:
        from tune.methods.sft import SupervisedMethod

        return SupervisedMethod()
    if kind is MethodType.DPO:
        from tune.methods.dpo import DpoMethod

        return DpoMethod()
    if kind is MethodType.REINFORCEMENT:
        from tune.methods.rft import ReinforcementMethod

        return ReinforcementMethod()
    raise ValueError(f"no training method for {kind!r}")


def method_formats(type: MethodType | str) -> tuple[DatasetFormat, ...]:
    """The dataset formats a method trains on (what job creation checks files against)."""
    return get_method(type).formats


__all__ = ["TrainingMethod", "get_method", "method_formats"]

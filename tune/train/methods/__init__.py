"""Training methods behind one interface (``tune.train.methods.base``: ``TrainingMethod``, and
``TrainHooks``, how a run reports back).

``sft`` (supervised, assistant-only loss), ``dpo`` (preference pairs) and ``rft``
(reinforcement with a grader as reward, trl's GRPO), like peft's one module per backend
behind one interface. Each module registers its method (``@register_method``), so a new
method is one sibling module; another package adds one through the
``quanta.training_methods`` entry-point group (``quanta.plugins``).
"""

from __future__ import annotations

from collections.abc import Callable

from quanta.plugins import Plugins
from quanta.types import DatasetFormat, MethodType
from tune.train.methods.base import TrainHooks, TrainingMethod

TRAINING_METHODS: Plugins[Callable[[], TrainingMethod]] = Plugins(
    "training method", __name__, "quanta.training_methods")
register_method = TRAINING_METHODS.register


def get_method(type: MethodType | str) -> TrainingMethod:
    """The method called ``type`` (its module imports trl only when it trains)."""
    return TRAINING_METHODS.get(type)()


def method_formats(type: MethodType | str) -> tuple[DatasetFormat, ...]:
    """The dataset formats a method trains on (the in-tree methods take theirs from
    ``tune.plan.DATASET_FORMATS``, which job creation checks files against)."""
    return get_method(type).formats


__all__ = ["TRAINING_METHODS", "TrainHooks", "TrainingMethod", "get_method", "method_formats",
           "register_method"]

"""The training-method interface: what the trainer needs from ``sft``, ``dpo`` and the next one.

A method turns normalised examples into trainer rows and builds a trl trainer over
them; the trainer (``tune.train.trainer``) owns everything else (model loading, precision,
arguments, callbacks, saving). Like ``serve.engines``, implementations are imported
lazily through ``tune.train.methods.get_method``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from quanta.types import DatasetFormat, MethodType

if TYPE_CHECKING:
    from tune.plan import TrainingPlan


@dataclass
class TrainHooks:
    """How a training run reports back to its job (the worker's side); every hook is
    optional. A method's trainer gets them too (``build_trainer``'s ``hooks``)."""

    on_metrics: Callable[[dict[str, Any]], None] = lambda metrics: None
    on_checkpoint: Callable[[int, Path, dict[str, Any]], None] = lambda step, path, m: None
    should_stop: Callable[[], str | None] = lambda: None
    on_progress: Callable[[int, int, float | None], None] = lambda step, total, loss: None
    # Something the job's owner should see (a grader failing on some samples, say).
    on_warning: Callable[[str, dict[str, Any]], None] = lambda message, data: None


class TrainingMethod(Protocol):
    type: MethodType
    formats: tuple[DatasetFormat, ...]  # the dataset formats this method trains on

    def prepare(self, tokenizer: Any, examples: list[dict[str, Any]], max_length: int) -> Any:
        """A ``datasets.Dataset`` of trainer rows (raises DatasetError if none is left)."""
        ...

    def trainer_args(self, plan: TrainingPlan) -> dict[str, Any]:
        """Method-specific additions to the trainer's arguments."""
        ...

    def build_trainer(self, model: Any, tokenizer: Any, train_rows: Any, eval_rows: Any | None,
                      args: dict[str, Any], plan: TrainingPlan, callbacks: list[Any],
                      hooks: TrainHooks, calculator: bool = False) -> Any:
        """The trl trainer, ready for ``train(resume_from_checkpoint=...)``; ``hooks`` reach
        the job (events) from inside training. ``calculator``: the model writes calculation
        traces, so whatever it generates while training is decoded with the calculator
        (teacher-forced methods have nothing to decode)."""
        ...

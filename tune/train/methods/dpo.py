"""Direct preference optimisation with trl's DPOTrainer on OpenAI's preference JSONL.

quanta.data normalises ``{"input", "preferred_output", "non_preferred_output"}`` into trl's
conversational ``{"prompt", "chosen", "rejected"}``; the reference model is the same peft
model with its adapter disabled, so no second copy of the weights is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quanta.data import DatasetError
from quanta.types import MethodType
from tune.plan import DATASET_FORMATS
from tune.train.methods import register_method

if TYPE_CHECKING:
    from tune.plan import TrainingPlan
    from tune.train.methods.base import TrainHooks


@register_method(MethodType.DPO)
class DpoMethod:
    type = MethodType.DPO
    formats = DATASET_FORMATS[MethodType.DPO]

    def prepare(self, tokenizer: Any, examples: list[dict[str, Any]], max_length: int) -> Any:
        from datasets import Dataset

        rows = [{"prompt": ex["prompt"], "chosen": ex["chosen"], "rejected": ex["rejected"]}
                for ex in examples]
        if not rows:
            raise DatasetError("the preference file holds no pairs")
        return Dataset.from_list(rows)

    def trainer_args(self, plan: TrainingPlan) -> dict[str, Any]:
        return {}

    def build_trainer(self, model: Any, tokenizer: Any, train_rows: Any, eval_rows: Any | None,
                      args: dict[str, Any], plan: TrainingPlan, callbacks: list[Any],
                      hooks: TrainHooks, calculator: bool = False) -> Any:
        from trl import DPOConfig, DPOTrainer

        assert plan.hyperparameters.beta is not None  # resolve() fills it for DPO
        config = DPOConfig(**args, beta=plan.hyperparameters.beta,
                           max_length=plan.quanta.max_length)
        return DPOTrainer(model=model, ref_model=None, args=config, train_dataset=train_rows,
                          eval_dataset=eval_rows, processing_class=tokenizer,
                          callbacks=callbacks)

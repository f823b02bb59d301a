"""Direct preference optimisation with trl's DPOTrainer on OpenAI's preference JSONL.

quanta.data normalises ``{"input", "preferred_output", "non_preferred_output"}`` into trl's
conversational ``{"prompt", "chosen", "rejected"}``; the reference model is the same peft
model with its adapter disabled, so no second copy of the weights is loaded.
"""

from __future__ import annotations

from typing import Any


def prepare(tokenizer: Any, examples: list[dict[str, Any]], max_length: int) -> Any:
    from datasets import Dataset

    rows = [{"prompt": ex["prompt"], "chosen": ex["chosen"], "rejected": ex["rejected"]}
            for ex in examples]
    if not rows:
        from tune.datafiles import DatasetError

        raise DatasetError("the preference file holds no pairs")
    return Dataset.from_list(rows)


def build_trainer(model: Any, tokenizer: Any, train_rows: Any, eval_rows: Any | None,
                  args: dict[str, Any], hyper: dict[str, Any], callbacks: list[Any]) -> Any:
    from trl import DPOConfig, DPOTrainer

    args = {k: v for k, v in args.items() if k != "padding_free"}
    config = DPOConfig(**args, beta=float(hyper["beta"]), max_length=hyper["max_length"])
    return DPOTrainer(model=model, ref_model=None, args=config, train_dataset=train_rows,
                      eval_dataset=eval_rows, processing_class=tokenizer, callbacks=callbacks)

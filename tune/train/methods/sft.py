"""Supervised fine-tuning with trl's SFTTrainer on pre-tokenized, assistant-masked rows.

We tokenize ourselves (``tune.train.dataset``) because chat templates (SmolLM2's, the
defaults ``quanta.architectures`` gives bases) have no generation markers. Two measured
CPU levers live here:

- Padding-free batches (sequences concatenated, position ids restart per sequence): no
  compute is spent on pad tokens; with SDPA the model builds a block-diagonal causal mask,
  so sequences never attend to each other (a test checks the loss equals the padded one).
- Per-sequence attention on those rows (``tune.train.attention``): without it SDPA attends over
  the whole concatenated row under a block mask, work that grows with the row length squared.
- A lean loss: the backbone runs once, the LM head projects only the positions that carry
  a label (the assistant tokens, through the model's ``logits_to_keep``), and
  cross-entropy runs on those rows alone. trl 1.16's
  fused head also skips unlabelled positions but additionally computes the full-vocabulary
  entropy of every labelled token, which on 2 CPU cores cost more than it saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quanta.data import DatasetError
from quanta.types import MethodType
from tune.plan import DATASET_FORMATS
from tune.train.dataset import IGNORE_INDEX, tokenize_examples
from tune.train.methods import register_method

if TYPE_CHECKING:
    from tune.plan import TrainingPlan
    from tune.train.methods.base import TrainHooks


def labelled_loss(model: Any, inputs: dict[str, Any],
                  num_items: Any = None) -> tuple[Any, Any, Any]:
    """(loss, correct top-1 count, labelled token count) computing logits only where needed.

    The model runs through its own forward (so a DDP wrapper syncs gradients) with
    ``logits_to_keep`` naming the labelled positions of a padding-free row; padded
    batches (several rows) project every position and keep the labelled ones.
    """
    import torch

    kwargs = {k: inputs[k] for k in ("attention_mask", "position_ids", "cu_seq_lens_q",
                                     "cu_seq_lens_k", "max_length_q", "max_length_k")
              if k in inputs}
    targets = inputs["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    if targets.shape[0] == 1:  # position p's logits predict token p + 1
        positions = keep[0].nonzero().squeeze(-1)
        logits = model(input_ids=inputs["input_ids"], use_cache=False,
                       logits_to_keep=positions, **kwargs).logits[0].float()
    else:
        logits = model(input_ids=inputs["input_ids"], use_cache=False,
                       **kwargs).logits[:, :-1][keep].float()
    wanted = targets[keep]
    total = torch.nn.functional.cross_entropy(logits, wanted, reduction="sum")
    count = keep.sum()
    denominator = num_items if num_items is not None else count
    loss = total / torch.as_tensor(denominator, device=total.device).clamp(min=1)
    with torch.no_grad():
        correct = (logits.argmax(-1) == wanted).sum()
    return loss, correct, count


def _trainer_class() -> type:
    from trl import SFTTrainer

    class QuantaSFTTrainer(SFTTrainer):
        """SFTTrainer with the lean labelled-positions loss (same metrics names)."""

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            import torch

            mode = "train" if self.model.training else "eval"
            loss, correct, count = labelled_loss(model, inputs, num_items_in_batch)
            processes = self.accelerator.num_processes
            if processes > 1 and num_items_in_batch is not None \
                    and self.args.average_tokens_across_devices:
                # num_items_in_batch counts every rank's tokens and DDP averages gradients
                # over ranks: scale back to the global batch's mean (as Trainer does).
                loss = loss * processes
            self._metrics[mode]["mean_token_accuracy"].append(
                (correct / count.clamp(min=1)).item())
            if mode == "train":
                mask = inputs.get("attention_mask")
                tokens = mask.sum() if mask is not None else torch.tensor(
                    inputs["input_ids"].numel())
                # every rank's tokens (one scalar all-gather per step under DDP)
                self._total_train_tokens += int(self.accelerator.gather(
                    tokens.reshape(1).to(self.accelerator.device)).sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return (loss, {"loss": loss}) if return_outputs else loss

    return QuantaSFTTrainer


@register_method(MethodType.SUPERVISED)
class SupervisedMethod:
    type = MethodType.SUPERVISED
    # camel-ai physics and Alpaca records are normalised to chat on reading.
    formats = DATASET_FORMATS[MethodType.SUPERVISED]

    def prepare(self, tokenizer: Any, examples: list[dict[str, Any]], max_length: int) -> Any:
        from datasets import Dataset

        rows = tokenize_examples(tokenizer, examples, max_length)
        if not rows:
            raise DatasetError("no example has an assistant token left to train on after "
                               "truncation: raise max_length or shorten the prompts")
        return Dataset.from_list(rows)

    def trainer_args(self, plan: TrainingPlan) -> dict[str, Any]:
        return {"padding_free": plan.quanta.padding_free}

    def build_trainer(self, model: Any, tokenizer: Any, train_rows: Any, eval_rows: Any | None,
                      args: dict[str, Any], plan: TrainingPlan, callbacks: list[Any],
                      hooks: TrainHooks, calculator: bool = False) -> Any:
        from trl import SFTConfig

        config = SFTConfig(
            **args,
            max_length=None if args.get("padding_free") else plan.quanta.max_length,
            dataset_kwargs={"skip_prepare_dataset": True},
            completion_only_loss=True,
        )
        return _trainer_class()(model=model, args=config, train_dataset=train_rows,
                                eval_dataset=eval_rows, processing_class=tokenizer,
                                callbacks=callbacks)

"""Run one training: load the model, build the method's trainer, report progress, save.

The worker owns the job row; this module only trains. It talks back through
``TrainHooks``: metrics (as OpenAI names them), checkpoints (a Trainer checkpoint
directory: adapter weights, optimizer, scheduler, RNG and trainer state, everything
``resume_from_checkpoint`` needs) and a ``should_stop`` poll used for cancellation.

The base model computes in the dtype ``quanta.precision`` chose for the device (weights
loaded in it; LoRA weights stay fp32). Measured CPU levers applied here: gradient
checkpointing off, no autocast over CPU weights that are already in the compute dtype,
no packing; padding-free batches instead.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quanta.types import StopReason
from tune.train.methods.base import TrainHooks

if TYPE_CHECKING:
    from quanta.precision import Precision
    from tune.plan import TrainingPlan
    from tune.train.methods import TrainingMethod

# Trainer log keys -> OpenAI metric names (fine_tuning.job.event data / checkpoint metrics).
METRIC_NAMES = {
    "loss": "train_loss",
    "mean_token_accuracy": "train_mean_token_accuracy",
    "eval_loss": "valid_loss",
    "eval_mean_token_accuracy": "valid_mean_token_accuracy",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    "epoch": "epoch",
    "num_tokens": "trained_tokens",
    "rewards/accuracies": "train_reward_accuracy",
    "rewards/margins": "train_reward_margin",
    # reinforcement (trl's GRPO)
    "reward": "train_reward_mean",
    "reward_std": "train_reward_std",
    "kl": "train_kl",
    "completions/mean_length": "train_completion_length",
    "frac_reward_zero_std": "train_frac_reward_zero_std",
}


@dataclass
class TrainResult:
    steps: int
    total_steps: int
    trained_tokens: int
    stopped: str | None
    adapter_dir: Path | None
    model: Any = None
    tokenizer: Any = None
    backend: str = "peft"
    history: list[dict[str, Any]] = field(default_factory=list)
    train_runtime: float = 0.0


def _callback_class() -> type:
    from transformers import TrainerCallback

    from tune.train.distributed.collective import any_rank, barrier

    class QuantaCallback(TrainerCallback):
        """Forwards logs and checkpoints to the hooks and stops on cancel."""

        def __init__(self, hooks: TrainHooks) -> None:
            self.hooks = hooks
            self.history: list[dict[str, Any]] = []
            self.stopped: str | None = None
            self.last_checkpoint_metrics: dict[str, Any] = {}
            self.last_loss: float | None = None

        def _poll(self, control: Any, state: Any, step_end: bool) -> None:
            """Stop on the job's reason; every rank polls (rank 0 watches the job) and
            agrees, so all stop at one step. A pause waits for a step boundary (not the
            last: that step finishes the job) and saves a checkpoint there first."""
            reason = self.hooks.should_stop()
            pausing = any_rank(reason == StopReason.PAUSED)
            stopping = any_rank(bool(reason) and reason != StopReason.PAUSED)
            if stopping:
                self.stopped = reason or "stopped"
                control.should_training_stop = True
                control.should_save = False
            elif pausing and step_end and state.global_step < state.max_steps:
                self.stopped = StopReason.PAUSED
                control.should_training_stop = True
                control.should_save = True

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._poll(control, state, step_end=True)

        def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._poll(control, state, step_end=False)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kwargs: Any) -> None:
            logs = logs or {}
            metrics: dict[str, Any] = {"step": state.global_step}
            for key, name in METRIC_NAMES.items():
                if key in logs and logs[key] is not None:
                    value = logs[key]
                    metrics[name] = float(value) if not isinstance(value, int) else value
            if len(metrics) == 1 or "train_runtime" in logs:
                return
            metrics["total_steps"] = state.max_steps
            self.history.append(metrics)
            self.last_checkpoint_metrics.update(metrics)
            self.hooks.on_metrics(metrics)
            self.last_loss = metrics.get("train_loss", self.last_loss)
            self.hooks.on_progress(state.global_step, state.max_steps, self.last_loss)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            barrier()  # every rank has written its RNG state into the directory
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and path.is_dir():
                metrics = {**self.last_checkpoint_metrics, "step": state.global_step}
                self.hooks.on_checkpoint(state.global_step, path, metrics)
                shutil.rmtree(path, ignore_errors=True)  # it lives in the registry now

    return QuantaCallback


def plan_steps(records: int, batch_size: int, n_epochs: int, max_steps: int | None) -> int:
    per_epoch = max(1, math.ceil(records / batch_size))
    return max_steps if max_steps else per_epoch * n_epochs


def training_args(plan: TrainingPlan, method: TrainingMethod, workdir: Path, *, seed: int,
                  total_steps: int, has_eval: bool, precision: Precision) -> dict[str, Any]:
    import torch

    hyper, opts = plan.hyperparameters, plan.quanta
    cuda = torch.cuda.is_available()
    world = opts.distributed.world_size  # batch_size is the global batch (spec checks it)
    eval_inline = has_eval and not opts.qlora  # an eval forward mid-training breaks CPU QLoRA
    args: dict[str, Any] = dict(
        output_dir=str(workdir / "trainer"),
        per_device_train_batch_size=hyper.batch_size // world,
        per_device_eval_batch_size=max(1, hyper.batch_size // world),
        num_train_epochs=float(hyper.n_epochs),
        max_steps=opts.max_steps or -1,
        learning_rate=plan.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        logging_steps=max(1, total_steps // 50),
        logging_first_step=True,
        save_strategy="steps",
        save_steps=opts.checkpoint_every,
        save_total_limit=None,
        eval_strategy="steps" if eval_inline else "no",
        eval_steps=opts.checkpoint_every if eval_inline else None,
        report_to=[],
        seed=seed,
        data_seed=seed,
        use_cpu=not cuda,
        # Autocast only where it pays: on CPU the weights are already in the compute dtype
        # (autocast only adds casts, measured ~25% slower); 4-bit QLoRA layers and CUDA
        # (fp32 LoRA math) need it to compute in the chosen half precision.
        bf16=precision.is_bf16 and (opts.qlora or cuda),
        fp16=precision.is_fp16 and cuda,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        remove_unused_columns=False,
        save_only_model=False,
    )
    if world > 1:
        from tune.train.distributed.launch import ddp_args

        args.update(ddp_args(opts.distributed, cuda=cuda))
    args.update(method.trainer_args(plan))
    if opts.group_by_length:
        args["train_sampling_strategy"] = "group_by_length"
    return args


def train(base_dir: Path, plan: TrainingPlan, train_examples: list[dict[str, Any]],
          valid_examples: list[dict[str, Any]] | None, workdir: Path, *, seed: int = 0,
          resume_from: Path | None = None, hooks: TrainHooks | None = None,
          precision: Precision | None = None, start_adapter: Path | None = None,
          calculator: bool = False) -> TrainResult:
    """Train a LoRA adapter; returns where it was saved (None when stopped early).

    ``precision`` defaults to the plan's ``compute_dtype`` resolved for this device;
    ``start_adapter`` continues training an existing adapter (a fine-tuned model as the
    job's ``model``) instead of a fresh one; ``calculator``: the model writes calculation
    traces (reinforcement samples its rollouts with calculator decoding).
    """
    import torch
    from transformers import set_seed

    from quanta.precision import resolve
    from tune.train import modeling
    from tune.train.methods import get_method

    hooks = hooks or TrainHooks()
    opts = plan.quanta
    precision = precision or resolve(opts.compute_dtype, requested_by="job")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    set_seed(seed)
    model, tokenizer, backend = modeling.trainable_model(
        base_dir, opts.lora, precision, qlora=opts.qlora, max_length=opts.max_length,
        start_adapter=start_adapter)
    method = get_method(plan.type)
    train_rows = method.prepare(tokenizer, train_examples, opts.max_length)
    eval_rows = method.prepare(tokenizer, valid_examples, opts.max_length) \
        if valid_examples else None
    total = plan_steps(len(train_rows), plan.hyperparameters.batch_size,
                       plan.hyperparameters.n_epochs, opts.max_steps)
    args = training_args(plan, method, workdir, seed=seed, total_steps=total,
                         has_eval=eval_rows is not None, precision=precision)
    callback = _callback_class()(hooks)
    eval_inline = eval_rows is not None and not opts.qlora  # see training_args
    trainer = method.build_trainer(model, tokenizer, train_rows,
                                   eval_rows if eval_inline else None,
                                   args, plan, [callback], hooks, calculator=calculator)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes through the hooks instead
    from tune.train.attention import packed_attention

    with packed_attention(model, enabled=bool(args.get("padding_free"))):
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    state = trainer.state
    tokens = _trained_tokens(callback.history, train_rows, state.global_step,
                             plan.hyperparameters.batch_size)
    result = TrainResult(steps=state.global_step, total_steps=state.max_steps,
                         trained_tokens=tokens, stopped=callback.stopped, adapter_dir=None,
                         model=trainer.model, tokenizer=tokenizer, backend=backend,
                         history=callback.history,
                         train_runtime=float(output.metrics.get("train_runtime", 0.0)))
    if callback.stopped is None and trainer.is_world_process_zero():
        adapter_dir = workdir / "adapter"
        # Only the trained adapter: GRPO may hold a frozen "ref" copy beside it.
        trainer.model.save_pretrained(adapter_dir, selected_adapters=["default"])
        tokenizer.save_pretrained(adapter_dir)
        result.adapter_dir = adapter_dir
    return result


def _trained_tokens(history: list[dict[str, Any]], rows: Any, steps: int,
                    batch_size: int) -> int:
    for metrics in reversed(history):
        if "trained_tokens" in metrics:
            return int(metrics["trained_tokens"])
    if "input_ids" in rows.column_names:
        mean = sum(len(x) for x in rows["input_ids"]) / max(1, len(rows))
        return int(mean * steps * batch_size)
    return 0

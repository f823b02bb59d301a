"""Reinforcement fine-tuning (OpenAI's ``reinforcement`` method) with trl's GRPOTrainer.

Each step samples ``num_generations`` completions for ``batch_size`` prompts, scores every
completion with the job's grader (``tune.graders``), and moves the LoRA adapter towards
the completions that scored above their group's mean, with a KL penalty (``beta``)
against the model the job started from (the base, or the adapter it continues: trl keeps
a frozen copy of that adapter as the reference).

Grader problems (a python grader that hangs or crashes, a template naming a missing
field) score 0 for that completion and are reported to the job's events once per step.
With a validation file, every ``eval_interval`` steps the grader scores greedy answers
to ``eval_samples`` validation items (``valid_reward_mean`` in the metrics events).

A job continuing an adapter trained with calculation traces samples its rollouts with
calculator decoding (``CalculatorRollout``), as ``quanta serve`` answers with that adapter:
the grader then scores the answers a client would get, and the inserted values are masked
out of the loss (trl's ``env_mask``), so the policy is credited only for what it wrote.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from quanta.calculator import MAX_CALLS
from quanta.data import DatasetError
from quanta.types import GraderType, MethodType
from tune.plan import DATASET_FORMATS
from tune.train.methods import register_method

if TYPE_CHECKING:
    from tune.graders import Grader
    from tune.plan import TrainingPlan
    from tune.train.methods.base import TrainHooks


def completion_text(completion: Any) -> str:
    """A trl completion (conversational messages, or text) as plain text."""
    if isinstance(completion, list):
        return "".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))
    return str(completion)


class GraderReward:
    """trl's reward function over a Quanta grader: one float per completion.

    Python graders are slow to start (a sandbox each), so a batch is graded on a few
    threads; the rewards keep their order. Problems are counted per step and reported
    through ``hooks.on_warning``.
    """

    def __init__(self, grader: Grader, hooks: TrainHooks, parallel: int = 1) -> None:
        self.grader, self.hooks, self.parallel = grader, hooks, max(1, parallel)
        self.__name__ = "grader"  # trl logs rewards/<name>/mean

    def _one(self, completion: Any, item_json: str) -> tuple[float, str | None]:
        from tune.graders import sample_from_text

        try:
            grade = self.grader.grade(sample_from_text(completion_text(completion)),
                                      json.loads(item_json))
        except Exception as exc:  # a grader bug costs one reward, never the job
            return 0.0, f"other_error: the grader raised {type(exc).__name__}: {exc}"[:500]
        return grade.score, grade.problem()

    def __call__(self, prompts: list[Any], completions: list[Any], item: list[str],
                 trainer_state: Any = None, **_: Any) -> list[float]:
        with ThreadPoolExecutor(self.parallel) as pool:
            graded = list(pool.map(self._one, completions, item))
        problems = [problem for _, problem in graded if problem]
        if problems:
            step = getattr(trainer_state, "global_step", 0) + 1
            kinds = Counter(problem.split(":", 1)[0] for problem in problems)
            summary = ", ".join(f"{count} x {kind}" for kind, count in kinds.items())
            self.hooks.on_warning(
                f"Step {step}: the grader failed on {len(problems)} of {len(graded)} "
                f"completions ({summary}); they scored 0. First: {problems[0][:400]}",
                {"step": step, "grader_errors": len(problems), "completions": len(graded)})
        return [score for score, _ in graded]


class CalculatorRollout:
    """trl's ``rollout_func``: one sampled completion per prompt (trl's sampler already
    repeats each prompt ``num_generations`` times), with calculator decoding, from the
    model being trained and trl's own sampling settings."""

    def __init__(self, max_calls: int = MAX_CALLS) -> None:
        self.max_calls = max_calls

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from trl.models import unwrap_model_for_generation

        from quanta.generation import sample_with_calculator

        tokenizer = trainer.processing_class
        prompt_ids = [_prompt_ids(tokenizer, prompt) for prompt in prompts]
        with unwrap_model_for_generation(
                trainer.model_wrapped, trainer.accelerator,
                gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
                generation_kwargs=trainer.generation_kwargs,
                gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        ) as model:
            rollouts = sample_with_calculator(model, tokenizer, prompt_ids,
                                              trainer.generation_config,
                                              trainer.max_completion_length, self.max_calls)
        return {"prompt_ids": prompt_ids, "completion_ids": [r.ids for r in rollouts],
                "logprobs": None,  # trl recomputes them from the ids (no vLLM here)
                "env_mask": [r.generated for r in rollouts],
                "calculator_calls": [r.calls for r in rollouts]}


def _prompt_ids(tokenizer: Any, prompt: Any) -> list[int]:
    text = prompt if isinstance(prompt, str) else tokenizer.apply_chat_template(
        prompt, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _eval_callback(grader: Grader, items: list[dict[str, Any]], tokenizer: Any,
                   plan: TrainingPlan, hooks: TrainHooks, calculator: bool) -> Any:
    from transformers import TrainerCallback

    from tune.train.evaluation import grader_score

    interval = plan.hyperparameters.eval_interval or 1
    count = plan.hyperparameters.eval_samples or len(items)

    class GraderEval(TrainerCallback):
        """Scores greedy answers to validation items every ``eval_interval`` steps."""

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None,
                        **kwargs: Any) -> None:
            if state.global_step % interval or model is None:
                return
            scores = grader_score(model, tokenizer, items[:count], grader,
                                  plan.max_completion_length, calculator=calculator)
            model.train()
            hooks.on_metrics({"step": state.global_step, "total_steps": state.max_steps,
                              "valid_reward_mean": scores["grader_score"],
                              "valid_reward_n": scores["grader_n"]})

    return GraderEval()


@register_method(MethodType.REINFORCEMENT)
class ReinforcementMethod:
    type = MethodType.REINFORCEMENT
    formats = DATASET_FORMATS[MethodType.REINFORCEMENT]

    def prepare(self, tokenizer: Any, examples: list[dict[str, Any]], max_length: int) -> Any:
        from datasets import Dataset

        rows = [{"prompt": ex["messages"], "item": json.dumps(ex["item"])} for ex in examples]
        if not rows:
            raise DatasetError("the reinforcement file holds no prompts")
        return Dataset.from_list(rows)

    def trainer_args(self, plan: TrainingPlan) -> dict[str, Any]:
        options = plan.quanta.reinforcement
        generations = plan.num_generations
        return {
            # trl counts completions: batch_size prompts x num_generations per step.
            "per_device_train_batch_size": plan.hyperparameters.batch_size * generations,
            "num_generations": generations,
            "max_completion_length": plan.max_completion_length,
            "temperature": options.temperature,
            "beta": options.beta,
            "eval_strategy": "no",  # the grader evaluates (GraderEval), not trl's loop
            "eval_steps": None,
            "log_completions": False,
            # Training loads the model with use_cache off; sampling wants the KV cache back
            # (without it every new token recomputes the whole sequence: ~5x slower here).
            "generation_kwargs": {"use_cache": True},
        }

    def build_trainer(self, model: Any, tokenizer: Any, train_rows: Any, eval_rows: Any | None,
                      args: dict[str, Any], plan: TrainingPlan, callbacks: list[Any],
                      hooks: TrainHooks, calculator: bool = False) -> Any:
        from trl import GRPOConfig, GRPOTrainer

        from tune.graders import build_grader

        assert plan.grader is not None  # the spec requires one for this method
        grader = build_grader(plan.grader)
        parallel = 2 if _uses_python(plan.grader) else 1
        callbacks = list(callbacks)
        if eval_rows is not None:  # None under QLoRA: an eval mid-training breaks it
            items = [{"messages": row["prompt"], "item": json.loads(row["item"])}
                     for row in eval_rows]
            callbacks.append(_eval_callback(grader, items, tokenizer, plan, hooks, calculator))
        config = GRPOConfig(**args)
        return GRPOTrainer(model=model, reward_funcs=[GraderReward(grader, hooks, parallel)],
                           args=config, train_dataset=train_rows, processing_class=tokenizer,
                           callbacks=callbacks,
                           rollout_func=CalculatorRollout() if calculator else None)


def _uses_python(config: Any) -> bool:
    from tune.graders.config import leaf_configs

    return any(leaf.type == GraderType.PYTHON for leaf in leaf_configs(config))

"""Before/after evaluation: held-out loss on assistant tokens (and on the held-out
conceptual physics questions), physics answer accuracy and, for reinforcement jobs, the
job's grader on held-out items.

The held-out problems come from the default domain (``quanta.domains.get_domain``:
physics, whose names the metrics carry). Held-out loss uses the job's validation file,
else the held-out problems as chat. Physics accuracy generates greedily for ``n``
held-out problems (batched, left padding) and checks each final answer with the domain's
``check_answer`` (numeric, unit-aware). The grader score generates greedily for the
validation file's prompts and averages the grader's rewards. Keep ``n`` small in tests: on
2 CPU cores generation runs at tens of tokens per second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quanta.domains import get_domain
from quanta.generation import greedy_answers
from tune.train.dataset import IGNORE_INDEX, tokenize_examples

if TYPE_CHECKING:
    from quanta.precision import Precision
    from quanta_physics import PhysicsProblem
    from tune.graders import Grader
    from tune.plan import EvalOptions


def held_out_problems(n: int) -> list[PhysicsProblem]:
    domain = get_domain()
    return domain.held_out_problems(min(n, domain.HELD_OUT_MAX)) if n > 0 else []


def physics_examples(n: int) -> list[dict[str, Any]]:
    return [{"messages": list(get_domain().problem_to_chat(p)["messages"])}
            for p in held_out_problems(n)]


def heldout_loss(model: Any, tokenizer: Any, examples: list[dict[str, Any]],
                 max_length: int = 512, batch_size: int = 8) -> dict[str, Any]:
    """Mean cross-entropy and top-1 accuracy over the assistant tokens of ``examples``."""
    import torch

    rows = tokenize_examples(tokenizer, examples, max_length)
    if not rows:
        return {}
    device = next(model.parameters()).device
    total_loss, total_tokens, correct = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            width = max(len(r["input_ids"]) for r in batch)
            pad = tokenizer.pad_token_id
            ids = torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"]))
                                for r in batch], device=device)
            labels = torch.tensor([r["labels"] + [IGNORE_INDEX] * (width - len(r["labels"]))
                                   for r in batch], device=device)
            mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                 for r in batch], device=device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
            shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
            valid = shift_labels != IGNORE_INDEX
            loss = torch.nn.functional.cross_entropy(
                shift_logits[valid], shift_labels[valid], reduction="sum")
            total_loss += float(loss)
            total_tokens += int(valid.sum())
            correct += int((shift_logits.argmax(-1)[valid] == shift_labels[valid]).sum())
    return {"heldout_loss": total_loss / max(1, total_tokens),
            "heldout_token_accuracy": correct / max(1, total_tokens),
            "heldout_tokens": total_tokens}


SAMPLE_ANSWERS = 3  # kept on the adapter row, so reports can show answers side by side


def physics_accuracy(model: Any, tokenizer: Any, n: int, max_new_tokens: int = 96,
                     batch_size: int = 8, calculator: bool = False) -> dict[str, Any]:
    """Greedy answers to ``n`` held-out physics problems, checked numerically (decoded
    with the calculator for an adapter trained with calculation traces)."""
    problems = held_out_problems(n)
    if not problems:
        return {}
    domain = get_domain()
    texts = greedy_answers(model, tokenizer,
                           [list(domain.problem_to_chat(p)["messages"]) for p in problems],
                           max_new_tokens, batch_size, calculator=calculator)
    correct = 0
    results: list[bool] = []  # per problem, so exports can be compared on a prefix
    samples: list[dict[str, Any]] = []
    for problem, text in zip(problems, texts, strict=True):
        ok = bool(domain.check_answer(problem, text))
        correct += ok
        results.append(ok)
        if len(samples) < SAMPLE_ANSWERS:
            samples.append({"question": problem.question, "answer": text.strip(),
                            "expected": f"{problem.value:g} {problem.unit}", "correct": ok})
    return {"physics_accuracy": correct / len(problems), "physics_correct": correct,
            "physics_results": results,
            "physics_n": len(problems), "physics_calculator": calculator, "samples": samples}


def grader_score(model: Any, tokenizer: Any, examples: list[dict[str, Any]], grader: Grader,
                 max_new_tokens: int = 128, calculator: bool = False) -> dict[str, Any]:
    """The grader's mean reward over greedy answers to reinforcement ``examples``
    (``{"messages": prompt, "item": row}``), with a few answers kept as samples;
    ``calculator``: answers decoded with it, as served."""
    from tune.graders import sample_from_text

    if not examples:
        return {}
    texts = greedy_answers(model, tokenizer, [ex["messages"] for ex in examples],
                           max_new_tokens, calculator=calculator)
    scores: list[float] = []
    samples: list[dict[str, Any]] = []
    for example, text in zip(examples, texts, strict=True):
        grade = grader.grade(sample_from_text(text), example["item"])
        scores.append(grade.score)
        if len(samples) < SAMPLE_ANSWERS:
            samples.append({"question": example["messages"][-1]["content"],
                            "answer": text.strip(), "score": grade.score})
    return {"grader_score": sum(scores) / len(scores), "grader_n": len(scores),
            "grader_samples": samples}


def evaluate(model: Any, tokenizer: Any, valid_examples: list[dict[str, Any]] | None,
             options: EvalOptions, max_length: int = 512, grader: Grader | None = None,
             grader_max_tokens: int = 128, calculator: bool = False) -> dict[str, Any]:
    """Every measure for one model; an empty dict when there is nothing to measure.
    ``calculator``: the model writes calculation traces; its answers are decoded with the
    calculator, as ``quanta serve`` serves it.

    Reinforcement validation rows (prompts only) feed the grader score; the held-out loss
    then falls back to the physics problems, which carry answers.
    """
    prompts_only = bool(valid_examples) and "item" in valid_examples[0]
    examples = (None if prompts_only else valid_examples) or physics_examples(
        options.loss_examples)
    result: dict[str, Any] = {}
    if examples and options.loss_examples > 0:
        result.update(heldout_loss(model, tokenizer, examples[:options.loss_examples],
                                   max_length))
    if options.physics_n > 0 and options.loss_examples > 0:
        # Conceptual questions training never sees: does the adapter keep its physics prose?
        concepts = heldout_loss(model, tokenizer, get_domain().held_out_concept_examples(),
                                max_length)
        result.update({"concept_heldout_loss": concepts.get("heldout_loss"),
                       "concept_heldout_token_accuracy": concepts.get(
                           "heldout_token_accuracy")})
    result.update(physics_accuracy(model, tokenizer, options.physics_n, options.max_new_tokens,
                                   calculator=calculator))
    if grader is not None and prompts_only and valid_examples and options.grader_n > 0:
        result.update(grader_score(model, tokenizer, valid_examples[:options.grader_n],
                                   grader, grader_max_tokens, calculator=calculator))
    return result


def evaluate_base(base_dir: Any, valid_examples: list[dict[str, Any]] | None,
                  options: EvalOptions, precision: Precision, max_length: int = 512,
                  grader: Grader | None = None, grader_max_tokens: int = 128,
                  start_adapter: Any = None, calculator: bool = False) -> dict[str, Any]:
    """Evaluate the starting model (the base, or the adapter a job continues) in a model
    instance of its own.

    A separate full-precision instance in the compute dtype (freed afterwards) keeps the
    QLoRA gradient trap away: the 4-bit model that trains never runs an eval-mode forward
    before training.
    """
    import gc

    from tune.train.modeling import load_base, load_tokenizer

    if options.physics_n <= 0 and options.loss_examples <= 0 and (
            grader is None or options.grader_n <= 0):
        return {}
    tokenizer = load_tokenizer(base_dir)
    model = load_base(base_dir, precision)
    if start_adapter is not None:  # the job continues a fine-tuned model: that is "before"
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, start_adapter)
    try:
        return evaluate(model, tokenizer, valid_examples, options, max_length, grader,
                        grader_max_tokens, calculator=calculator)
    finally:
        del model
        gc.collect()

"""Verifiable numeric physics problems: a seeded generator over the problem families and
fixed held-out splits.

Every problem has one numeric answer with a unit, so a model's output can be graded
automatically (see ``quanta_physics.answers``). Worked answers write their
arithmetic as calculation traces (``quanta.calculator``), which ``quanta serve``
evaluates for an adapter trained on them.

Three held-out splits measure three kinds of generalisation, and training never sees any
of them:

* ``numbers``: the training families and phrasings with other numbers (drawn from
  ``HELD_OUT_SEED``; training skips any question text this pool contains);
* ``phrasing``: the training families, asked in each family's last phrasing, which
  training never uses;
* ``family``: whole families training never sees (``HELD_OUT_FAMILIES``, two per topic).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from quanta.calculator import format_value
from quanta_physics.answers import check_answer, extract_final_answer
from quanta_physics.families import FAMILIES, Family, Topic

__all__ = [
    "FAMILIES",
    "HELD_OUT_FAMILIES",
    "HELD_OUT_MAX",
    "HELD_OUT_SEED",
    "SYSTEM_PROMPT",
    "TOPICS",
    "HeldOutSplit",
    "PhysicsProblem",
    "check_answer",
    "extract_final_answer",
    "generate_problems",
    "held_out_problems",
    "problem_to_chat",
    "problem_to_rft",
]

SYSTEM_PROMPT = ("Solve the physics problem briefly. Write each calculation as "
                 '<<expression>>, then end with "Final answer: <value> <unit>".')
TOPICS: tuple[str, ...] = tuple(str(topic) for topic in Topic)
HELD_OUT_SEED = 90_210_417
HELD_OUT_MAX = 200
# Which families of each topic are held out: the 3rd and 8th in the topic's own order
# (a rule rather than a list, so adding families keeps the split balanced).
_HELD_OUT_POSITIONS = (2, 7)


class HeldOutSplit(StrEnum):
    NUMBERS = "numbers"
    PHRASING = "phrasing"
    FAMILY = "family"


def _held_out_families() -> frozenset[str]:
    names: set[str] = set()
    for topic in Topic:
        in_topic = [f for f in FAMILIES if f.topic == topic]
        names.update(in_topic[i].name for i in _HELD_OUT_POSITIONS if i < len(in_topic))
    return frozenset(names)


HELD_OUT_FAMILIES = _held_out_families()
TRAINING_FAMILIES: tuple[Family, ...] = tuple(f for f in FAMILIES
                                              if f.name not in HELD_OUT_FAMILIES)


@dataclass(frozen=True)
class PhysicsProblem:
    """One problem: its question, a short worked answer ending in ``Final answer: ...``,
    and the exact value/unit a response is graded against."""

    id: str
    topic: str
    question: str
    worked_answer: str
    value: float
    unit: str
    family: str = ""
    phrasing: int = 0


def _interleave_topics(families: tuple[Family, ...]) -> tuple[Family, ...]:
    """Families ordered topic by topic in turn, so any prefix of a split spans all topics."""
    by_topic = [[f for f in families if f.topic == topic] for topic in Topic]
    order: list[Family] = []
    for i in range(max(len(group) for group in by_topic)):
        order += [group[i] for group in by_topic if i < len(group)]
    return tuple(order)


def _worked_answer(steps: tuple[str, ...], value: float, unit: str) -> str:
    spaced = unit if unit == "°" else f" {unit}"
    return "\n".join([*steps, f"Final answer: {format_value(value)}{spaced}"])


def _generate(n: int, seed: int, prefix: str, exclude: frozenset[str],
              families: tuple[Family, ...], phrasings: slice) -> list[PhysicsProblem]:
    """Round-robin over ``families`` (topics interleaved), each problem in one of the
    family's ``phrasings`` chosen by the seeded generator; no repeated questions."""
    rng = random.Random(seed)
    order = _interleave_topics(families)
    problems: list[PhysicsProblem] = []
    seen: set[str] = set(exclude)
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 50 * n + 100:
            raise RuntimeError(f"could not generate {n} distinct problems from seed {seed}")
        family = order[(attempts - 1) % len(order)]
        worked = family.solve(rng)
        allowed = range(len(family.phrasings))[phrasings]
        phrasing = allowed[rng.randrange(len(allowed))]
        question = family.phrasings[phrasing].format(**worked.givens)
        if question in seen:
            continue
        seen.add(question)
        problems.append(PhysicsProblem(
            id=f"{prefix}-{len(problems):04d}-{family.name}", topic=str(family.topic),
            question=question, worked_answer=_worked_answer(worked.steps, worked.value,
                                                            worked.unit),
            value=worked.value, unit=worked.unit, family=family.name, phrasing=phrasing))
    return problems


_TRAINING_PHRASINGS = slice(0, -1)
_HELD_OUT_PHRASING = slice(-1, None)


@cache
def _held_out_pool(split: HeldOutSplit) -> tuple[PhysicsProblem, ...]:
    if split is HeldOutSplit.NUMBERS:
        families, phrasings = TRAINING_FAMILIES, _TRAINING_PHRASINGS
    elif split is HeldOutSplit.PHRASING:
        families, phrasings = TRAINING_FAMILIES, _HELD_OUT_PHRASING
    else:
        families, phrasings = tuple(f for f in FAMILIES if f.name in HELD_OUT_FAMILIES), \
            slice(None)
    return tuple(_generate(HELD_OUT_MAX, HELD_OUT_SEED, f"heldout-{split}", frozenset(),
                           families, phrasings))


def held_out_problems(n: int = 30, split: HeldOutSplit | str = HeldOutSplit.NUMBERS
                      ) -> list[PhysicsProblem]:
    """A fixed evaluation split: its first ``n`` (at most ``HELD_OUT_MAX``) problems."""
    if not 0 <= n <= HELD_OUT_MAX:
        raise ValueError(f"n must be between 0 and {HELD_OUT_MAX}, got {n}")
    return list(_held_out_pool(HeldOutSplit(split))[:n])


def generate_problems(n: int, seed: int = 0) -> list[PhysicsProblem]:
    """``n`` distinct training problems, deterministic for ``seed``: training families in
    their training phrasings, disjoint from the held-out "numbers" pool
    (``HELD_OUT_SEED`` itself is refused)."""
    if seed == HELD_OUT_SEED:
        raise ValueError("HELD_OUT_SEED is reserved for the held-out evaluation split")
    exclude = frozenset(p.question for p in _held_out_pool(HeldOutSplit.NUMBERS))
    return _generate(n, seed, f"train{seed}", exclude, TRAINING_FAMILIES,
                     _TRAINING_PHRASINGS)


def problem_to_chat(problem: PhysicsProblem, system_prompt: str | None = SYSTEM_PROMPT
                    ) -> dict[str, Any]:
    """The problem as a chat example (system, user question, assistant worked answer)."""
    messages = [*problem_prompt(problem, system_prompt),
                {"role": "assistant", "content": problem.worked_answer}]
    return {"messages": messages, "topic": problem.topic}


def problem_prompt(problem: PhysicsProblem, system_prompt: str | None = SYSTEM_PROMPT
                   ) -> list[dict[str, Any]]:
    """The problem as a model is asked it: the system prompt and the user's question."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": problem.question}]


def problem_to_rft(problem: PhysicsProblem, system_prompt: str | None = SYSTEM_PROMPT
                   ) -> dict[str, Any]:
    """The problem as an OpenAI reinforcement fine-tuning row: the prompt, plus the answer
    a ``physics_answer`` grader reads as ``{{item.answer}}`` and the worked answer as
    ``{{item.solution}}`` (what a text-similarity grader can give partial credit against)."""
    return {"messages": problem_prompt(problem, system_prompt),
            "answer": f"{problem.value:.6g} {problem.unit}", "solution": problem.worked_answer,
            "topic": problem.topic, "id": problem.id}

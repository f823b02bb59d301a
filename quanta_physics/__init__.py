"""Physics: verifiable numeric problems in families over eight topics (worked answers
write their arithmetic as calculation traces), a unit-aware answer checker, conceptual
Q&A, and the datasets Quanta ships (a training set and a held-out split).

Training draws from ``generate_problems(n, seed)``; evaluation from ``held_out_problems``
(split by numbers, by phrasing or by family), which training never sees; ``check_answer``
grades a model's text numerically, with units.
"""

from quanta_physics.answers import check_answer, extract_final_answer
from quanta_physics.datasets import (
    bundled_physics_path,
    held_out_chat_examples,
    held_out_chat_path,
    held_out_concept_examples,
)
from quanta_physics.problems import (
    HELD_OUT_FAMILIES,
    HELD_OUT_MAX,
    SYSTEM_PROMPT,
    TOPICS,
    HeldOutSplit,
    PhysicsProblem,
    generate_problems,
    held_out_problems,
    problem_prompt,
    problem_to_chat,
    problem_to_rft,
)
from quanta_physics.units import normalise_unit

__all__ = [
    "HELD_OUT_FAMILIES",
    "HELD_OUT_MAX",
    "SYSTEM_PROMPT",
    "TOPICS",
    "HeldOutSplit",
    "PhysicsProblem",
    "bundled_physics_path",
    "check_answer",
    "extract_final_answer",
    "generate_problems",
    "held_out_chat_examples",
    "held_out_chat_path",
    "held_out_concept_examples",
    "held_out_problems",
    "normalise_unit",
    "problem_prompt",
    "problem_to_chat",
    "problem_to_rft",
]

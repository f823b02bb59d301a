"""Every physics problem family phrases, solves and checks itself consistently."""

import math
import random
import string

import pytest

from quanta.calculator import format_value, trace_problems
from quanta_physics.answers import check_answer, extract_final_answer
from quanta_physics.families import FAMILIES, MIN_PHRASINGS
from quanta_physics.units import normalise_unit

SEEDS = range(40)


def _placeholders(phrasing: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(phrasing) if name}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_family_phrases_solves_and_checks(family):
    assert len(family.phrasings) >= MIN_PHRASINGS
    assert len(set(family.phrasings)) == len(family.phrasings)
    questions = set()
    for seed in SEEDS:
        worked = family.solve(random.Random(seed))
        for phrasing in family.phrasings:
            assert _placeholders(phrasing) <= set(worked.givens), phrasing
            question = phrasing.format(**worked.givens)
            assert "{" not in question and "}" not in question
            questions.add(question)
        assert math.isfinite(worked.value) and worked.value != 0
        assert normalise_unit(worked.unit) == worked.unit, worked.unit
        answer = "\n".join([*worked.steps, f"Final answer: {format_value(worked.value)} "
                                          f"{worked.unit}"])
        assert "<<" in answer, "the worked answer writes its arithmetic as a calculation"
        assert trace_problems(answer) == []
        assert extract_final_answer(answer) is not None
        from quanta_physics.problems import PhysicsProblem

        problem = PhysicsProblem(id="x", topic=family.topic, question="q", worked_answer="",
                                 value=worked.value, unit=worked.unit)
        assert check_answer(problem, answer, rel_tol=0.002), answer
    # The numbers vary: 40 draws give many distinct questions.
    assert len(questions) >= 10 * len(family.phrasings) // 2


def test_family_names_are_unique():
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))

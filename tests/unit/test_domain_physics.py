"""Physics problems: generator determinism, held-out split, answer checking, bundled set."""

# Answers use the multiplication sign on purpose: models write it.
# ruff: noqa: RUF001

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import pytest

from quanta.data import dataset_stats, read_examples, validate_bytes
from quanta_physics import (
    SYSTEM_PROMPT,
    TOPICS,
    PhysicsProblem,
    bundled_physics_path,
    check_answer,
    extract_final_answer,
    generate_problems,
    held_out_chat_examples,
    held_out_chat_path,
    held_out_problems,
    normalise_unit,
    problem_to_chat,
)
from quanta_physics.build_datasets import main as build_main
from quanta_physics.datasets import render_bundled
from quanta_physics.problems import (
    FAMILIES,
    HELD_OUT_FAMILIES,
    HELD_OUT_MAX,
    HELD_OUT_SEED,
    TRAINING_FAMILIES,
    HeldOutSplit,
    _generate,
)


def problem(value: float, unit: str) -> PhysicsProblem:
    return PhysicsProblem("p", "mechanics", "q", "w", value, unit)


# --- generator ---------------------------------------------------------------------------


def test_generator_is_deterministic_per_seed() -> None:
    assert generate_problems(60, seed=7) == generate_problems(60, seed=7)
    assert generate_problems(60, seed=7) != generate_problems(60, seed=8)
    assert generate_problems(60, seed=7)[:20] == generate_problems(20, seed=7)


def test_generator_covers_families_topics_and_phrasings() -> None:
    assert len(FAMILIES) >= 60 and len(TOPICS) == 8
    problems = generate_problems(len(TRAINING_FAMILIES) * 6, seed=3)
    assert {p.topic for p in problems} == set(TOPICS)
    assert {p.family for p in problems} == {f.name for f in TRAINING_FAMILIES}
    assert {p.id.rsplit("-", 1)[1] for p in problems} == {f.name for f in TRAINING_FAMILIES}
    assert len({p.question for p in problems}) == len(problems)
    by_family = {f.name: f for f in FAMILIES}
    # Training uses every phrasing but the last of each family.
    most = max(len(f.phrasings) for f in TRAINING_FAMILIES)
    assert {p.phrasing for p in problems} == set(range(most - 1))
    assert all(p.phrasing < len(by_family[p.family].phrasings) - 1 for p in problems)


def test_worked_answers_end_with_final_answer_and_check_correct() -> None:
    for p in generate_problems(300, seed=11):
        last = p.worked_answer.splitlines()[-1]
        assert last.startswith("Final answer: "), p
        assert len(p.worked_answer.splitlines()) >= 2
        assert check_answer(p, p.worked_answer), p
        assert math.isfinite(p.value) and p.value > 0 and p.unit


def test_known_family_values() -> None:
    by_name = {p.family: p for p in generate_problems(len(TRAINING_FAMILIES), seed=5)}
    assert by_name["ohms_law_current"].unit == "A"
    ke = by_name["kinetic_energy"]
    assert ke.unit == "J"
    velocity = by_name["final_velocity"]
    assert "<<" in velocity.worked_answer and velocity.unit == "m/s"


def test_held_out_is_fixed_and_disjoint_from_training() -> None:
    held = held_out_problems()
    assert len(held) == 30 and held == held_out_problems(30)
    assert held_out_problems(10) == held[:10]
    assert {p.topic for p in held} == set(TOPICS)
    pool = {p.question for p in held_out_problems(HELD_OUT_MAX)}
    for seed in (0, 1, 2, 42, 1234):
        train = {p.question for p in generate_problems(400, seed=seed)}
        assert not train & pool, seed
    with pytest.raises(ValueError, match="reserved"):
        generate_problems(5, seed=HELD_OUT_SEED)
    with pytest.raises(ValueError):
        held_out_problems(HELD_OUT_MAX + 1)


def test_training_skips_colliding_questions() -> None:
    # Small templates (few value combinations) do repeat held-out questions in raw draws:
    # the generator must skip them, not rely on luck.
    held = {p.question for p in held_out_problems(HELD_OUT_MAX)}
    raw = _generate(2000, 99, "raw", frozenset(), TRAINING_FAMILIES, slice(0, -1))
    assert held & {p.question for p in raw}
    problems = generate_problems(2000, seed=99)
    assert len({p.question for p in problems}) == 2000
    assert not held & {p.question for p in problems}


def test_problem_to_chat() -> None:
    p = held_out_problems(1)[0]
    chat = problem_to_chat(p)
    assert chat["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": p.question},
        {"role": "assistant", "content": p.worked_answer},
    ]
    assert chat["topic"] == p.topic
    assert "Final answer: <value> <unit>" in SYSTEM_PROMPT
    assert [m["role"] for m in problem_to_chat(p, system_prompt=None)["messages"]] == [
        "user", "assistant"]


def test_held_out_splits_generalise_by_numbers_phrasing_and_family() -> None:
    assert len(HELD_OUT_FAMILIES) >= 8
    by_family = {f.name: f for f in FAMILIES}
    train = generate_problems(2000, seed=1)
    trained_families = {p.family for p in train}
    numbers = held_out_problems(HELD_OUT_MAX, HeldOutSplit.NUMBERS)
    phrasing = held_out_problems(HELD_OUT_MAX, HeldOutSplit.PHRASING)
    family = held_out_problems(HELD_OUT_MAX, HeldOutSplit.FAMILY)
    assert {p.family for p in numbers} <= trained_families
    assert all(p.phrasing == len(by_family[p.family].phrasings) - 1 for p in phrasing)
    assert {p.family for p in family} == set(HELD_OUT_FAMILIES)
    assert not trained_families & HELD_OUT_FAMILIES
    for split in (numbers, phrasing, family):
        assert {p.topic for p in split[:30]} == set(TOPICS)
        assert all(check_answer(p, p.worked_answer) for p in split)
    assert not {p.question for p in train} & {p.question for p in numbers + phrasing + family}


# --- answer extraction and checking ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Final answer: 12.5 m/s", (12.5, "m/s")),
        ("reasoning...\nFinal Answer: 3.2e-19 J", (3.2e-19, "J")),
        ("Final answer: 3.2 × 10^-19 J", (3.2e-19, "J")),
        ("E = 3.2x10^-19 J", (3.2e-19, "J")),
        ("Final answer: 3.2 × 10⁻¹⁹ J", (3.2e-19, "J")),
        ("Final answer: 2.5 × 10^{-3} J", (2.5e-3, "J")),
        ("Final answer: 12,500 N", (12500.0, "N")),
        ("Final answer: v = 11 m/s (about 40 km/h)", (11.0, "m/s")),
        ("**Final answer:** $\\boxed{12.5\\ \\text{m/s}}$", (12.5, "m/s")),
        ("Final answer: 4.7 ohms.", (4.7, "Ω")),
        ("Final answer: 30°", (30.0, "°")),
        ("Final answer: -3.5 m s^-2", (-3.5, "m/s^2")),
        ("Final answer:\n7.2 joules", (7.2, "J")),
        ("so the speed is 12.5 m s^-1.", (12.5, "m/s")),
        ("The answer is 42", (42.0, "")),
    ],
)
def test_extract_final_answer(text: str, expected: tuple[float, str]) -> None:
    value, unit = extract_final_answer(text)  # type: ignore[misc]
    assert value == pytest.approx(expected[0], rel=1e-9)
    assert unit == expected[1]


def test_extract_final_answer_none_without_number() -> None:
    assert extract_final_answer("I am not sure.") is None
    assert extract_final_answer("") is None


def test_final_answer_line_wins_over_later_numbers() -> None:
    text = "v = 3 + 2 × 4\nFinal answer: 11 m/s\nCheck: 4 s and 2 m/s^2."
    assert extract_final_answer(text) == (11.0, "m/s")


@pytest.mark.parametrize(
    ("expected", "unit", "answer"),
    [
        (12.5, "m/s", "Final answer: 12.5 m/s"),
        (12.5, "m/s", "Final answer: 12.6 m s^-1"),  # within 2%
        (12.5, "m/s", "Final answer: 12.5 meters per second"),
        (3.31e-19, "J", "Final answer: 3.31 × 10^-19 joules"),
        (3.31e-19, "J", "Final answer: 3.3e-19 J"),
        (2.07, "eV", "Final answer: 2.07 electronvolts"),
        (45.0, "cm", "Final answer: 0.45 m"),  # converted units count
        (27.8, "kPa", "Final answer: 27,760 Pa"),
        (0.4, "A", "Final answer: 400 mA"),
        (100.0, "Ω", "Final answer: 100 ohms"),
        (100.0, "Ω", "Final answer: 100 Ω"),
        (37.4, "°", "Final answer: 37.4 degrees"),
        (300.0, "K", "Final answer: 300 kelvin"),
        (25.0, "°C", "Final answer: 25 °C"),
        (106.0, "N", "Final answer: 106 newtons"),
    ],
)
def test_check_answer_accepts(expected: float, unit: str, answer: str) -> None:
    assert check_answer(problem(expected, unit), answer)


@pytest.mark.parametrize(
    ("expected", "unit", "answer"),
    [
        (12.5, "m/s", "Final answer: 13.5 m/s"),  # wrong value (8% off)
        (12.5, "m/s", "Final answer: 12.5 m"),  # wrong unit
        (12.5, "m/s", "Final answer: 12.5"),  # missing unit
        (12.5, "m/s", "Final answer: twelve and a half m/s"),  # no number
        (12.5, "m/s", "Final answer: 12.5 blargs"),  # unknown unit
        (3.31e-19, "J", "Final answer: 3.31 × 10^-18 J"),  # wrong exponent
        (3.31e-19, "J", "Final answer: 3.31 eV"),  # same dimension, wrong value
        (298.0, "K", "Final answer: 298 °C"),  # offsets are not scales
        (100.0, "Ω", "Final answer: 100 V"),
        (2.0, "C", "Final answer: 2 °C"),  # coulomb vs Celsius
    ],
)
def test_check_answer_rejects(expected: float, unit: str, answer: str) -> None:
    assert not check_answer(problem(expected, unit), answer)


def test_check_answer_tolerance_is_configurable() -> None:
    p = problem(100.0, "N")
    assert not check_answer(p, "Final answer: 104 N")
    assert check_answer(p, "Final answer: 104 N", rel_tol=0.05)


def test_checker_rejects_other_problems_answers() -> None:
    held = held_out_problems(30)
    wrong = sum(check_answer(p, q.worked_answer) for p, q in itertools.pairwise(held))
    assert wrong == 0


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("m/s", "m/s"), ("m s^-1", "m/s"), ("m·s⁻¹", "m/s"), ("J", "J"), ("joules", "J"),
     ("N", "N"), ("newtons", "N"), ("Ω", "Ω"), ("ohm", "Ω"), ("ohms", "Ω"), ("eV", "eV"),
     ("nm", "nm"), ("K", "K"), ("°C", "°C"), ("degrees Celsius", "°C"), ("m/s²", "m/s^2"),
     ("kPa", "kPa"), ("mJ", "mJ"), ("MJ", "MJ"), ("bananas", None)],
)
def test_normalise_unit(spelling: str, canonical: str | None) -> None:
    assert normalise_unit(spelling) == canonical


# --- bundled set -------------------------------------------------------------------------


def test_bundled_set_validates_and_covers_topics() -> None:
    path = bundled_physics_path()
    examples = read_examples(path)
    assert len(examples) >= 500
    stats = dataset_stats(path)
    assert stats["format"] == "chat"
    assert set(stats["topics"]) == set(TOPICS)
    assert min(stats["topics"].values()) >= 50
    assert stats["max_tokens"] <= 256  # the demo trains with max_length 256: none is cut


def test_bundled_mix_of_numeric_and_conceptual() -> None:
    records = [json.loads(line) for line in bundled_physics_path().read_text("utf-8").splitlines()]
    numeric = [r for r in records if r["messages"][-1]["content"].count("Final answer:") == 1]
    assert len(numeric) >= 400
    assert len(records) - len(numeric) >= 90
    questions = Counter(r["messages"][1]["content"] for r in records)
    assert max(questions.values()) == 1  # no duplicates


def test_bundled_is_disjoint_from_held_out() -> None:
    train = {json.loads(line)["messages"][1]["content"]
             for line in bundled_physics_path().read_text("utf-8").splitlines()}
    pool = {p.question for p in held_out_problems(HELD_OUT_MAX)}
    assert not train & pool


def test_bundled_files_regenerate_byte_identically(tmp_path) -> None:
    rendered = render_bundled()
    assert rendered["physics_sft.jsonl"] == bundled_physics_path().read_bytes()
    assert rendered["physics_heldout.jsonl"] == held_out_chat_path().read_bytes()
    assert build_main(["--check"]) == 0
    assert build_main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "physics_sft.jsonl").read_bytes() == bundled_physics_path().read_bytes()
    (tmp_path / "physics_sft.jsonl").write_bytes(b"stale\n")
    assert build_main(["--check", "--out", str(tmp_path)]) == 1


def test_held_out_chat_examples_match_shipped_file() -> None:
    examples = held_out_chat_examples()
    assert len(examples) == 30
    shipped = read_examples(held_out_chat_path())
    assert [e["messages"] for e in examples] == [e["messages"] for e in shipped]
    data = held_out_chat_path().read_bytes()
    assert validate_bytes(data, "heldout.jsonl").ok

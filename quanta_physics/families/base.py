"""What a problem family is: phrasings of one physics question, and how to solve it.

A family draws its given values from a seeded ``random.Random``, phrases the question
with one of its phrasings (``str.format`` over ``Worked.givens``) and answers with a
short worked solution whose arithmetic is written as calculation traces
(``quanta.calculator``): the formula first, then ``<<expression>>value``, so a model
trained on it learns to write the calculation and leave the arithmetic to the server.
The expression converts the given units itself (``54/3.6`` for 54 km/h), because the
question's units vary.

Each family has at least ``MIN_PHRASINGS`` phrasings; the last is reserved for the
held-out "by phrasing" split and never trained on. Training families carry eight: textbook,
narrative (a concrete scenario), question-first and terse ones, in ASCII and Unicode unit
spellings, because a model trained on three textbook phrasings does not recognise the
family in a story problem (bench/results/physics.md). The held-out families
(``problems.HELD_OUT_FAMILIES``) keep four: all of them are held out.
"""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from quanta.calculator import annotate

MIN_PHRASINGS = 4


class Topic(StrEnum):
    MECHANICS = "mechanics"
    KINEMATICS = "kinematics"
    ENERGY_MOMENTUM = "energy and momentum"
    WAVES_OPTICS = "waves and optics"
    CIRCUITS = "electricity and circuits"
    MAGNETISM = "magnetism"
    THERMODYNAMICS = "thermodynamics and gases"
    MODERN = "modern physics"


@dataclass(frozen=True)
class Worked:
    """One drawn problem: the values its phrasings name, the worked steps, the answer."""

    givens: Mapping[str, object]
    steps: tuple[str, ...]
    value: float
    unit: str


@dataclass(frozen=True)
class Family:
    """A kind of problem: its name, topic, phrasings and solver."""

    name: str
    topic: Topic
    phrasings: tuple[str, ...]
    solve: Callable[[random.Random], Worked]

    def __post_init__(self) -> None:
        if len(self.phrasings) < MIN_PHRASINGS:
            raise ValueError(f"family {self.name} needs at least {MIN_PHRASINGS} phrasings")


class Calc:
    """A calculation trace: ``str(calc)`` is ``<<expression>>value``, ``calc.value`` the
    number (use it for the next step's expression, never a rounded copy)."""

    __slots__ = ("text", "value")

    def __init__(self, expression: str) -> None:
        self.text, self.value = annotate(expression)

    def __str__(self) -> str:
        return self.text


def num(x: float, sig: int = 3) -> str:
    """A given value as a question prints it: ``sig`` significant figures, without float
    noise (``0.30000000000000004`` -> ``0.3``) or scientific notation."""
    if x == 0:
        return "0"
    rounded = round(x, sig - 1 - math.floor(math.log10(abs(x))))
    text = f"{rounded:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text

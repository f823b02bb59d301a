"""The physics problem families, topic by topic (see ``families.base`` for what one is)."""

from __future__ import annotations

from quanta_physics.families import (
    circuits,
    energy_momentum,
    kinematics,
    magnetism,
    mechanics,
    modern,
    thermodynamics,
    waves_optics,
)
from quanta_physics.families.base import (
    MIN_PHRASINGS,
    Calc,
    Family,
    Topic,
    Worked,
    num,
)

FAMILIES: tuple[Family, ...] = (
    *mechanics.FAMILIES, *kinematics.FAMILIES, *energy_momentum.FAMILIES,
    *waves_optics.FAMILIES, *circuits.FAMILIES, *magnetism.FAMILIES,
    *thermodynamics.FAMILIES, *modern.FAMILIES,
)

__all__ = ["FAMILIES", "MIN_PHRASINGS", "Calc", "Family", "Topic", "Worked", "num"]

"""``string_check``: exact or substring comparison of two rendered templates (1 or 0).

``eq``/``ne`` compare exactly, ``like`` tests containment, ``ilike`` containment ignoring
case, as OpenAI documents them.
"""

from __future__ import annotations

from quanta.types import GraderType
from tune.graders import register_grader
from tune.graders.base import ComparisonGrader
from tune.graders.config import StringCheckConfig


@register_grader(GraderType.STRING_CHECK)
class StringCheckGrader(ComparisonGrader):
    config: StringCheckConfig

    def compare(self, given: str, reference: str) -> float:
        operation = self.config.operation
        if operation == "eq":
            passed = given == reference
        elif operation == "ne":
            passed = given != reference
        elif operation == "like":
            passed = reference in given
        else:
            passed = reference.casefold() in given.casefold()
        return 1.0 if passed else 0.0

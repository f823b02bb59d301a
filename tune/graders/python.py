"""``python``: the tenant's ``grade(sample, item) -> float``, run in the sandbox.

The code is untrusted: it runs only inside ``tune.graders.sandbox`` (bubblewrap, as
``nobody``, no network, no registry, no environment, bounded CPU, memory, output,
processes and time). Anything but a finite number back (an exception, a timeout, a
crash, a string, an integer past a float, a score outside ``[-SCORE_LIMIT, SCORE_LIMIT]``)
scores 0 with ``python_grader_runtime_error`` and the reason. A host that cannot build
the sandbox is reported as the server's error (``sandbox_unavailable``), not the tenant's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from quanta.types import GraderType
from tune.graders import register_grader
from tune.graders.base import Grade
from tune.graders.config import PythonConfig
from tune.graders.sandbox import Limits, SandboxUnavailable, run_python_grader

if TYPE_CHECKING:
    from quanta.config import Settings

SCORE_LIMIT = 1e6  # a reward beyond this is a bug in the grader, not a signal


def score_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable score (None when it is)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"grade returned {type(value).__name__}, not a number"
    try:
        number = float(value)
    except OverflowError:
        return "grade returned an integer too large for a float"
    if not math.isfinite(number):
        return f"grade returned {number}, not a finite number"
    if abs(number) > SCORE_LIMIT:
        return f"grade returned {number:g}, outside [-{SCORE_LIMIT:g}, {SCORE_LIMIT:g}]"
    return None


@register_grader(GraderType.PYTHON)
class PythonGrader:
    def __init__(self, config: PythonConfig, limits: Limits, python: Any = None) -> None:
        self.config, self.name, self.type = config, config.name, str(config.type)
        self.limits, self.python = limits, python

    @classmethod
    def from_config(cls, config: PythonConfig, settings: Settings) -> PythonGrader:
        """The sandbox's limits and interpreter are the operator's settings, not the tenant's."""
        limits = Limits(wall_seconds=settings.grader_timeout,
                        cpu_seconds=settings.grader_cpu_seconds,
                        memory_bytes=settings.grader_memory_mb * 1024 * 1024)
        return cls(config, limits, settings.grader_python)

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        try:
            run = run_python_grader(self.config.source, sample, item, self.limits, self.python)
        except SandboxUnavailable as exc:
            grade = Grade.failed("python_grader_server_error", str(exc))
            grade.errors["python_grader_server_error_type"] = "sandbox_unavailable"
            return grade
        problem = run.failure()
        if problem is None:
            score = run.result.get("score") if run.result else None
            problem = score_problem(score)
            if problem is None:
                return Grade(score=float(score))
        flag = "unresponsive_reward_error" if run.timed_out else "python_grader_runtime_error"
        grade = Grade.failed(flag)
        grade.errors["python_grader_runtime_error_details"] = problem
        return grade

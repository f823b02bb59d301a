"""How long the demo will take on this machine, measured from its first training steps.

The same demo runs 25x slower on a CPU that computes in a slow dtype, or on cores a
neighbour keeps busy; rather than promise a time, the demo measures its own steps (from
the job's metrics events) and says when the run will end, and when that is far over its
budget.
"""

from __future__ import annotations

from dataclasses import dataclass

# Exports (base + adapter GGUF, LoRA GGUF) with their held-out accuracy, accuracy by split,
# and both serving engines after training, as measured on 2 cores (README): 586 s on AVX2
# in fp32, 188 s with native bf16. Only an estimate, said as such.
AFTER_TRAINING_S = 590.0
AFTER_TRAINING_FAST_S = 190.0
# A forecast this far over the budget earns a warning and the --quick suggestion.
OVER_BUDGET = 1.25


@dataclass
class StepClock:
    """Seconds per training step between the first and the latest logged step.

    The first logged step carries the warm-up (allocation, first-call kernel choice), so
    the rate is taken from the steps after it.
    """

    first: tuple[int, float] | None = None
    latest: tuple[int, float] | None = None

    def record(self, step: int, at: float) -> None:
        if self.first is None:
            self.first = (step, at)
        elif step > self.first[0]:
            self.latest = (step, at)

    def seconds_per_step(self) -> float | None:
        if self.first is None or self.latest is None:
            return None
        steps = self.latest[0] - self.first[0]
        return max(0.0, self.latest[1] - self.first[1]) / steps


@dataclass(frozen=True)
class Forecast:
    seconds_per_step: float
    training_left_s: float
    run_total_s: float
    budget_s: float

    @property
    def over_budget(self) -> bool:
        return self.run_total_s > self.budget_s * OVER_BUDGET


def forecast(clock: StepClock, total_steps: int, elapsed_s: float, eval_s: float,
             after_training_s: float, budget_s: float) -> Forecast | None:
    """The run's end, from the steps measured so far (None until two steps are logged).

    ``elapsed_s``: the demo's time so far; ``eval_s``: what the base model's evaluation
    took (the adapter's evaluation after training costs about the same);
    ``after_training_s``: the estimate for the steps after training on this kind of machine.
    """
    rate = clock.seconds_per_step()
    if rate is None or clock.latest is None:
        return None
    left = max(0, total_steps - clock.latest[0]) * rate
    return Forecast(rate, left, elapsed_s + left + eval_s + after_training_s, budget_s)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"

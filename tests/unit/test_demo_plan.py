"""The default demo trains as many steps as this machine's compute dtype affords."""

from __future__ import annotations

import pytest

from demo.eta import StepClock, forecast
from demo.steps import FULL_STEPS, FULL_STEPS_FAST, DemoPlan
from quanta.precision import Capability, Precision
from quanta.types import ComputeDtype

AVX2 = Capability("cpu", "AVX2", native_bf16=False)
AVX512_BF16 = Capability("cpu", "AVX512", native_bf16=True, bf16_speedup=4.9)


@pytest.mark.parametrize(("precision", "steps"), [
    (Precision(ComputeDtype.FLOAT32, AVX2, "auto"), FULL_STEPS),
    (Precision(ComputeDtype.BFLOAT16, AVX512_BF16, "auto"), FULL_STEPS_FAST),
    # fp32 asked for on a bf16 CPU runs at fp32 speed; bf16 forced on AVX2 is slower still.
    (Precision(ComputeDtype.FLOAT32, AVX512_BF16, "QUANTA_COMPUTE_DTYPE"), FULL_STEPS),
    (Precision(ComputeDtype.BFLOAT16, AVX2, "QUANTA_COMPUTE_DTYPE"), FULL_STEPS),
    (Precision(ComputeDtype.FLOAT16, Capability("cuda", "T4", native_bf16=False), "auto"),
     FULL_STEPS_FAST),
])
def test_full_run_steps_follow_the_compute_dtype(precision: Precision, steps: int) -> None:
    plan = DemoPlan.for_run(quick=False, precision=precision)
    assert plan.max_steps == steps
    assert plan.budget_s == 20 * 60


def test_quick_run_ignores_the_machine() -> None:
    slow = DemoPlan.for_run(quick=True, precision=Precision(ComputeDtype.FLOAT32, AVX2, "auto"))
    fast = DemoPlan.for_run(quick=True,
                            precision=Precision(ComputeDtype.BFLOAT16, AVX512_BF16, "auto"))
    assert slow == fast
    assert slow.max_steps < FULL_STEPS


def test_forecast_adds_the_machines_after_training_estimate() -> None:
    fast = DemoPlan.for_run(quick=False,
                            precision=Precision(ComputeDtype.BFLOAT16, AVX512_BF16, "auto"))
    slow = DemoPlan.for_run(quick=False, precision=Precision(ComputeDtype.FLOAT32, AVX2, "auto"))
    assert fast.after_training_s < slow.after_training_s
    clock = StepClock()
    clock.record(1, at=100.0)
    clock.record(11, at=132.0)  # 3.2 s per step after the warm-up step
    eta = forecast(clock, fast.max_steps, elapsed_s=200.0, eval_s=30.0,
                   after_training_s=fast.after_training_s, budget_s=fast.budget_s)
    assert eta is not None
    assert eta.seconds_per_step == pytest.approx(3.2)
    assert eta.training_left_s == pytest.approx((fast.max_steps - 11) * 3.2)
    assert eta.run_total_s == pytest.approx(200 + eta.training_left_s + 30 + fast.after_training_s)


def test_fast_plan_export_check_can_see_a_degraded_export() -> None:
    """One problem must weigh less than DEGRADED_POINTS, or a 5-point drop is invisible."""
    from quantize.accuracy import DEGRADED_POINTS

    fast = DemoPlan.for_run(quick=False,
                            precision=Precision(ComputeDtype.BFLOAT16, AVX512_BF16, "auto"))
    assert fast.export_accuracy_n <= fast.physics_n
    assert 100 / fast.export_accuracy_n < DEGRADED_POINTS


def test_run_fingerprint_changes_with_the_request_or_the_data(tmp_path) -> None:
    """The demo reuses a finished job only if it trained the same request on the same data."""
    from demo.steps import run_fingerprint

    data = tmp_path / "train.jsonl"
    data.write_text('{"messages": []}\n')
    request = {"model": "m", "extra_body": {"quanta": {"max_steps": 180}}}
    first = run_fingerprint(request, (data,))
    assert run_fingerprint(dict(request), (data,)) == first
    assert run_fingerprint({**request, "extra_body": {"quanta": {"max_steps": 40}}},
                           (data,)) != first
    data.write_text('{"messages": [1]}\n')
    assert run_fingerprint(request, (data,)) != first

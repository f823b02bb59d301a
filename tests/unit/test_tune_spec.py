"""Job request parsing: OpenAI hyperparameters ("auto" included) and Quanta's extension block."""

from __future__ import annotations

import pytest

from tune.api.errors import invalid_request
from tune.plan import (
    BASE_LEARNING_RATE,
    BASE_LEARNING_RATE_RFT,
    PlanError,
    TrainingPlan,
    parse_request,
    resolve,
)


def test_auto_hyperparameters_resolve() -> None:
    request = parse_request({"model": "m", "training_file": "file-1"})
    plan = resolve(request, train_records=5)
    method = plan.stored()
    assert method["type"] == "supervised"
    assert method["supervised"]["hyperparameters"] == {
        "n_epochs": 3, "batch_size": 5, "learning_rate_multiplier": 1.0}
    assert method["quanta"]["lora"]["r"] == 16 and method["quanta"]["qlora"] is False
    assert plan.learning_rate == BASE_LEARNING_RATE


def test_dpo_and_legacy_hyperparameters() -> None:
    dpo = resolve(parse_request({"model": "m", "training_file": "f", "method": {
        "type": "dpo", "dpo": {"hyperparameters": {"beta": "auto", "n_epochs": 2}}}}), 100
                  ).stored()
    assert dpo["dpo"]["hyperparameters"] == {"n_epochs": 2, "batch_size": 8,
                                             "learning_rate_multiplier": 1.0, "beta": 0.1}
    legacy = resolve(parse_request({"model": "m", "training_file": "f",
                                    "hyperparameters": {"learning_rate_multiplier": 4}}), 10)
    assert legacy.stored()["supervised"]["hyperparameters"]["learning_rate_multiplier"] == 4
    assert legacy.learning_rate == pytest.approx(4 * BASE_LEARNING_RATE)


def test_reinforcement_scales_its_own_smaller_learning_rate() -> None:
    """A policy-gradient step at the supervised rate diverges (bench/results/physics.md)."""
    plan = resolve(parse_request({"model": "m", "training_file": "f", "method": {
        "type": "reinforcement", "reinforcement": {
            "grader": {"type": "string_check", "name": "g", "input": "{{sample.output_text}}",
                       "reference": "{{item.answer}}", "operation": "eq"},
            "hyperparameters": {"learning_rate_multiplier": 3}}}}), 10)
    assert BASE_LEARNING_RATE_RFT < BASE_LEARNING_RATE
    assert plan.learning_rate == pytest.approx(3 * BASE_LEARNING_RATE_RFT)


def test_the_stored_plan_validates_back_into_the_same_plan() -> None:
    """The worker re-validates the job row's method into the typed plan the API accepted."""
    plan = resolve(parse_request({"model": "m", "training_file": "f", "quanta": {
        "lora": {"r": 4}, "max_steps": 7, "compute_dtype": "float32"}}), 10)
    again = TrainingPlan.from_stored(plan.stored())
    assert again == plan
    assert again.quanta.lora.r == 4 and again.quanta.max_steps == 7
    assert again.quanta.compute_dtype == "float32" and again.hyperparameters.batch_size == 8
    # A row written before a field existed reads back with that field's default.
    old = plan.stored()
    del old["quanta"]["compute_dtype"]
    assert TrainingPlan.from_stored(old).quanta.compute_dtype == "auto"


@pytest.mark.parametrize(("body", "param"), [
    ({"method": {"supervised": {"hyperparameters": {"n_epochs": 51}}}},
     "method.supervised.hyperparameters.n_epochs"),
    ({"method": {"supervised": {"hyperparameters": {"batch_size": -1}}}},
     "method.supervised.hyperparameters.batch_size"),
    ({"quanta": {"lora": {"target_modules": []}}}, "quanta.lora.target_modules"),
    ({"quanta": {"checkpoint_every": 0}}, "quanta.checkpoint_every"),
    ({"training_file": ""}, "training_file"),
])
def test_out_of_range_values_name_the_param(body: dict, param: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(PlanError) as exc:
        parse_request({"model": "m", "training_file": "f", **body})
    answer = invalid_request(exc.value.errors())  # as the API answers it
    assert answer.param == param and answer.status == 400
    assert answer.openai_body()["error"]["type"] == "invalid_request_error"


def _distributed(distributed: dict, **body: object) -> dict:  # type: ignore[type-arg]
    return {"model": "m", "training_file": "f", "quanta": {"distributed": distributed}, **body}


def test_distributed_batch_size_is_the_global_batch() -> None:
    """"auto" rounds up to a multiple of the processes, so every rank gets rows."""
    plan = resolve(parse_request(_distributed({"nodes": 2, "processes_per_node": 3})), 5)
    assert plan.hyperparameters.batch_size == 6
    assert plan.quanta.distributed.world_size == 6
    assert TrainingPlan.from_stored(plan.stored()) == plan
    single = resolve(parse_request({"model": "m", "training_file": "f"}), 5)
    assert single.quanta.distributed.world_size == 1 and single.hyperparameters.batch_size == 5


@pytest.mark.parametrize(("body", "param", "words"), [
    (_distributed({"processes_per_node": 3}, method={"type": "supervised", "supervised": {
        "hyperparameters": {"batch_size": 4}}}),
     "method.supervised.hyperparameters.batch_size", "multiple of the job's 3 processes"),
    (_distributed({"strategy": "fsdp"}) | {"quanta": {"qlora": True,
                                                       "distributed": {"strategy": "fsdp"}}},
     "quanta", "cannot shard 4-bit QLoRA"),
    (_distributed({"nodes": 0}), "quanta.distributed.nodes", "greater than or equal to 1"),
    (_distributed({"strategy": "zero3"}), "quanta.distributed.strategy", "'auto', 'ddp' or"),
    (_distributed({"nodes": 2}, method={"type": "reinforcement", "reinforcement": {
        "grader": {"type": "string_check", "name": "g", "input": "{{sample.output_text}}",
                   "reference": "{{item.answer}}", "operation": "eq"}}}),
     "quanta.distributed", "reinforcement jobs run in one process"),
])
def test_impossible_distributed_blocks_are_400(body: dict, param: str,  # type: ignore[type-arg]
                                               words: str) -> None:
    with pytest.raises(PlanError) as err:
        resolve(parse_request(body), 8)
    answer = invalid_request(err.value.errors())  # as the API answers it
    assert answer.param == param
    assert words in answer.message

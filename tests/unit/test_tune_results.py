"""The results CSV: one row per step, later attempts win, every metric a column."""

from __future__ import annotations

from tune.train.results import results_csv


def test_rows_per_step_with_every_metric_and_resumed_steps_overwritten() -> None:
    events = [
        {"step": 1, "train_loss": 2.5, "total_steps": 3},
        {"step": 2, "train_loss": 2.0, "valid_loss": 2.2},
        {"step": 2, "train_loss": 1.9},  # a resumed attempt logged step 2 again
        {"step": 3, "train_loss": 1.5, "note": "text is not a metric", "flag": True},
        {"no_step": 1},
        {"step": 3, "full_valid_loss": 1.7},
    ]
    assert results_csv(events).splitlines() == [
        "step,train_loss,total_steps,valid_loss,full_valid_loss",
        "1,2.5,3,,",
        "2,1.9,,2.2,",
        "3,1.5,,,1.7",
    ]
    assert results_csv([]) == "step\n"

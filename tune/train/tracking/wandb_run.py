"""A job's run in Weights & Biases, as OpenAI's ``wandb`` integration makes it.

The run's id is the job's id (its display name too, unless the request names one), so a
paused or re-queued job reopens the same run. Credentials and mode come from the
worker's environment as wandb reads them (``WANDB_API_KEY``, ``WANDB_MODE=offline``,
``WANDB_DIR``): the job chooses the project, never the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tune.train.tracking import RunOutcome

if TYPE_CHECKING:
    from tune.integrations import WandbSettings

# Only what Quanta logs: no stdout capture, system stats, git state or code snapshot of
# the worker (none of it is the tenant's).
_QUIET = {"console": "off", "disable_git": True, "save_code": False, "x_disable_stats": True,
          "x_disable_machine_info": True, "disable_job_creation": True, "silent": True,
          "x_save_requirements": False}


class WandbTracker:
    def __init__(self, run: Any) -> None:
        self._run = run

    @classmethod
    def open(cls, settings: WandbSettings, job_id: str, params: dict[str, Any]) -> WandbTracker:
        import wandb

        run = wandb.init(project=settings.project, entity=settings.entity,
                         name=settings.name or job_id, tags=settings.tags or None, id=job_id,
                         resume="allow", reinit="create_new", config=params,
                         allow_val_change=True, settings=wandb.Settings(**_QUIET))
        return cls(run)

    @property
    def run_id(self) -> str:
        return str(self._run.id)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._run.log(metrics, step=step)

    def log_summary(self, values: dict[str, float | str]) -> None:
        self._run.summary.update(values)

    def finish(self, outcome: RunOutcome) -> None:
        self._run.summary["quanta_outcome"] = str(outcome)
        self._run.finish(exit_code=1 if outcome == RunOutcome.FAILED else 0)

"""A job's run on an MLflow tracking server (Quanta's ``mlflow`` integration).

The run carries the tag ``quanta.job_id``; a paused or re-queued job finds it and goes
on logging to it. Parameters are logged once, when the run is created (MLflow refuses
to change one). HTTP retries are capped, so a tracking server that went away costs the
job a few seconds before its run is dropped, not minutes at every step.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from tune.train.tracking import RunOutcome

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from tune.integrations import MlflowSettings

JOB_TAG = "quanta.job_id"
_STATUS = {RunOutcome.FINISHED: "FINISHED", RunOutcome.FAILED: "FAILED",
           RunOutcome.CANCELLED: "KILLED", RunOutcome.PAUSED: "SCHEDULED"}
# MLflow's own defaults are 7 retries with exponential backoff and a 120 s timeout;
# an operator's environment still wins.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
_MAX_PARAM = 6000  # MLflow's limit on a parameter's value


def _experiment_id(client: MlflowClient, name: str) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:  # another job created it meanwhile
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


class MlflowTracker:
    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self._client = client
        self.run_id = run_id

    @classmethod
    def open(cls, settings: MlflowSettings, job_id: str, params: dict[str, Any]
             ) -> MlflowTracker:
        for key, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        from mlflow import MlflowClient
        from mlflow.entities import Param

        client = MlflowClient(tracking_uri=settings.tracking_uri)
        experiment = _experiment_id(client, settings.experiment_name)
        runs = client.search_runs([experiment], filter_string=f"tags.`{JOB_TAG}` = '{job_id}'",
                                  max_results=1)
        if runs:
            run_id = runs[0].info.run_id
            client.update_run(run_id, status="RUNNING")
        else:
            run = client.create_run(experiment, run_name=settings.run_name or job_id,
                                    tags={JOB_TAG: job_id})
            run_id = run.info.run_id
            client.log_batch(run_id, params=[Param(k, str(v)[:_MAX_PARAM])
                                             for k, v in params.items()])
        return cls(client, run_id)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[Metric(k, v, now, step)
                                                     for k, v in metrics.items()])

    def log_summary(self, values: dict[str, float | str]) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        self._client.log_batch(
            self.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in values.items() if isinstance(v, float)],
            tags=[RunTag(f"quanta.{k}", v) for k, v in values.items() if isinstance(v, str)])

    def finish(self, outcome: RunOutcome) -> None:
        self._client.set_terminated(self.run_id, status=_STATUS[outcome])

"""The eval worker: claims queued eval runs from the registry and grades them, outside the
API's process (``quanta tune runner``).

A run is graded item by item: each item is sampled (a ``completions`` run asks serve,
as the run's tenant, with a key minted for the run and revoked when it stops), graded
with every testing criterion (``tune.graders``: the code reinforcement training rewards
with, python graders in their sandbox) and stored at once with its results, the run's
totals moving in the same transaction. At most ``QUANTA_EVAL_CONCURRENCY`` items are in
flight. Between items the worker beats: a cancel request stops the run (``canceled``,
the items stored kept), and a run taken from it (its heartbeat went stale) is left to
its new worker. A worker told to stop (``run_forever``'s ``stop``: the runner's SIGTERM
or Ctrl-C) gives its run back to the queue at its next beat. A worker killed mid-run
leaves its run ``in_progress``; once its heartbeat is stale the run goes back to the
queue and the next worker resumes it, skipping every item already stored, so no item is
sampled or graded twice once stored. The key a killed worker minted is revoked when
its run is claimed again or ends (``quanta.registry.evals``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from quanta.config import Settings
from quanta.registry import EvalRunRecord, NotFoundError, Registry
from quanta.types import EvalRunStatus
from tune.evals.criteria import MODEL_GRADERS, Criterion
from tune.evals.data_sources import (
    RunSource,
    SourceItem,
    content_items,
    file_items,
    parse_data_source,
)
from tune.evals.errors import EvalRequestError
from tune.evals.sampling import Sampled, Sampler, ServeUnreachable, given_sample
from tune.graders import Grade, Grader
from tune.serve_client import NoServer, model_base, serve_client, serve_url, tenant_key

log = logging.getLogger(__name__)


class RunFailed(RuntimeError):
    """The run cannot go on: its error in OpenAI's shape (``code``, ``message``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Graded:
    """One item, sampled and graded, as it is stored."""

    item: SourceItem
    sample: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    status: str = "pass"
    criteria: dict[str, bool] = field(default_factory=dict)
    usage: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Run:
    """What grading one run needs: its items, criteria with their graders, the sampler."""

    record: EvalRunRecord
    source: RunSource
    criteria: list[tuple[Criterion, Grader]]
    sampler: Sampler | None


class EvalWorker:
    """Claim, grade and finish eval runs (``run_once``; ``run_forever`` polls)."""

    def __init__(self, registry: Registry, worker_id: str | None = None, *,
                 heartbeat_interval: float = 5.0, stale_after: float = 60.0,
                 concurrency: int | None = None) -> None:
        self.registry = registry
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:evals"
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.concurrency = concurrency or registry.settings.eval_concurrency
        self.stop = threading.Event()

    def run_once(self) -> str | None:
        """Claim a queued run, if any (the oldest of a tenant with no run in progress,
        else the oldest), and grade it to its end (or until ``stop``); its id."""
        run = self.registry.evals.claim_next(self.worker_id)
        if run is None:
            return None
        self._run(run)
        return run.id

    def run_forever(self, poll_interval: float = 2.0,
                    stop: threading.Event | None = None) -> None:
        """Run queued runs until ``stop`` (a run in progress then goes back to the queue
        at its next beat); a run whose worker died goes back to the queue once its
        heartbeat is ``stale_after`` seconds old."""
        stop = self.stop = stop or self.stop
        while not stop.is_set():
            requeued = self.registry.evals.requeue_stale(self.stale_after)
            if requeued:
                log.warning("eval runs whose worker stopped beating, queued again: %s",
                            ", ".join(requeued))
            if self.run_once() is None:
                stop.wait(poll_interval)

    # -- one run -------------------------------------------------------------------------

    def _run(self, run: EvalRunRecord) -> None:
        try:
            with tenant_key(self.registry, run.tenant_id,
                            self.registry.evals.key_name(run.id)) as key:
                job = self._prepare(run, key)
                try:
                    status = self._grade(job)
                finally:
                    if job.sampler is not None:
                        job.sampler.client.close()
        except NotFoundError:  # the eval or the run was deleted meanwhile
            log.info("eval run %s is gone; nothing to finish", run.id)
            return
        except RunFailed as exc:
            self._finish(run, EvalRunStatus.FAILED, {"code": exc.code, "message": exc.message})
            return
        except Exception as exc:  # a bug, or the database: the run says so, the log more
            log.exception("eval run %s failed", run.id)
            self._finish(run, EvalRunStatus.FAILED,
                         {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
            return
        if status is not None:
            self._finish(run, status, None)

    def _finish(self, run: EvalRunRecord, status: EvalRunStatus,
                error: dict[str, str] | None) -> None:
        if not self.registry.evals.finish(run.id, self.worker_id, status, error=error):
            log.warning("eval run %s was taken from this worker", run.id)

    def _prepare(self, run: EvalRunRecord, key: str) -> _Run:
        """The run's data source, criteria and graders, and its sampler (serve's URL for
        the model, as the run's tenant)."""
        registry = self.registry
        source = parse_data_source(run.data_source)
        criteria = [Criterion.stored(c) for c in registry.evals.owned(
            run.tenant_id, run.eval_id).testing_criteria]
        urls: dict[str, str] = {}  # model -> its server, asked once per run

        def settings_for(leaf: Any) -> Settings:
            return self._grader_settings(run, leaf, key, urls)

        graders = [(c, c.build(settings_for)) for c in criteria]
        sampler = None
        if source.type == "completions":
            assert source.model is not None
            url = self._serve_url(run, source.model)
            sampler = Sampler(serve_client(url, key), source)
        return _Run(record=run, source=source, criteria=graders, sampler=sampler)

    def _serve_url(self, run: EvalRunRecord, model: str) -> str:
        try:
            return serve_url(self.registry, model_base(self.registry, run.tenant_id, model))
        except NotFoundError:
            raise RunFailed("model_not_found", f"The model {model} does not exist or is no "
                            "longer available to this run's owner") from None
        except NoServer as exc:
            raise RunFailed("serve_unavailable", str(exc)) from None

    def _grader_settings(self, run: EvalRunRecord, leaf: Any, key: str,
                         urls: dict[str, str]) -> Settings:
        """The settings one single grader (a criterion, or a part of a multi one) is
        built with: a model grader asks the server of its own model's base, as the
        run's tenant."""
        settings = self.registry.settings
        if leaf.type not in MODEL_GRADERS:
            return settings
        if leaf.model not in urls:
            urls[leaf.model] = self._serve_url(run, leaf.model)
        return settings.model_copy(update={"grader_model_url": f"{urls[leaf.model]}/v1",
                                           "grader_api_key": key})

    def _items(self, run: EvalRunRecord, source: RunSource) -> list[SourceItem]:
        if source.content is not None:
            return content_items(source.content)
        assert source.file_id is not None
        row = self.registry.get_file(run.tenant_id, source.file_id)
        try:
            return file_items(self.registry.blob_path(row.sha256), row.filename)
        except EvalRequestError as exc:
            raise RunFailed("invalid_file", exc.message) from None

    def _grade(self, job: _Run) -> EvalRunStatus | None:
        """Grade every item not stored yet; the run's final status (None: lost to
        another worker, or deleted)."""
        run, evals = job.record, self.registry.evals
        try:
            items = self._items(run, job.source)
        except NotFoundError:
            raise RunFailed("file_not_found", f"The run's file {job.source.file_id} was "
                            "deleted") from None
        stored = evals.graded_indexes(run.id)
        todo = iter([item for item in items if item.index not in stored])
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"eval-{run.id}")
        pending: dict[Future[Graded], SourceItem] = {}
        try:
            for item in _take(todo, self.concurrency):
                pending[pool.submit(self._item, job, item)] = item
            while pending:
                done, _ = wait(pending, timeout=self.heartbeat_interval,
                               return_when=FIRST_COMPLETED)
                for future in done:
                    pending.pop(future)
                    graded = _outcome(future)
                    evals.put_item(run.id, self.worker_id,
                                   datasource_item_id=graded.item.index,
                                   datasource_item=graded.item.item, sample=graded.sample,
                                   results=graded.results, status=graded.status,
                                   criteria=graded.criteria, usage=graded.usage)
                pulse = evals.heartbeat(run.id, self.worker_id)
                if not pulse.owned:
                    log.warning("eval run %s is no longer this worker's", run.id)
                    return None
                if pulse.cancel:
                    return EvalRunStatus.CANCELED
                if self.stop.is_set():
                    log.info("eval run %s goes back to the queue: this worker stops", run.id)
                    evals.release(run.id, self.worker_id)
                    return None
                for item in _take(todo, self.concurrency - len(pending)):
                    pending[pool.submit(self._item, job, item)] = item
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return EvalRunStatus.COMPLETED

    def _item(self, job: _Run, item: SourceItem) -> Graded:
        """Sample one item (or take its own sample) and grade it with every criterion."""
        sampled: Sampled = (job.sampler.sample(item.item) if job.sampler is not None
                            else given_sample(item.sample))
        graded = Graded(item=item, sample=sampled.sample,
                        usage=[sampled.usage] if sampled.usage else [])
        if sampled.namespace is None:
            graded.status = "error"
            return graded
        errored = failed = False
        for criterion, grader in job.criteria:
            try:
                grade = grader.grade(sampled.namespace, item.item)
            except Exception as exc:  # graders report bad samples; this is a bug: log it
                log.exception("criterion %s raised on item %d", criterion.id, item.index)
                grade = Grade.failed("other_error", f"{type(exc).__name__}: {exc}")
            passed = criterion.passed(grade)
            graded.results.append(_result(criterion, grade, passed))
            graded.criteria[criterion.id] = passed
            errored = errored or not grade.ok
            failed = failed or not passed
            if grade.token_usage:
                graded.usage.append({"model_name": grade.sampled_model_name
                                     or (criterion.models() or ["unknown"])[0],
                                     "invocation_count": 1, **grade.token_usage})
        graded.status = "error" if errored else "fail" if failed else "pass"
        return graded


def _result(criterion: Criterion, grade: Grade, passed: bool) -> dict[str, Any]:
    """OpenAI's ``EvalRunOutputItemResult``: the criterion (named by its id, as the run's
    per-criterion results name it), its score and whether it passed; what the grader
    said beyond its score in ``metadata``."""
    metadata: dict[str, Any] = {"name": criterion.name, **grade.details}
    if grade.sub_rewards:
        metadata["sub_rewards"] = grade.sub_rewards
    if not grade.ok:
        metadata["errors"] = grade.openai_errors()
        metadata["error"] = grade.problem()
    return {"name": criterion.id, "type": criterion.type, "score": float(grade.score),
            "passed": passed, "sample": None, "metadata": metadata}


def _outcome(future: Future[Graded]) -> Graded:
    """A finished item's outcome; serve unreachable stops the run (RunFailed)."""
    try:
        return future.result()
    except ServeUnreachable as exc:
        raise RunFailed("serve_unavailable", str(exc)) from None


def _take(items: Iterator[SourceItem], count: int) -> list[SourceItem]:
    taken = []
    for _ in range(max(0, count)):
        item = next(items, None)
        if item is None:
            break
        taken.append(item)
    return taken

"""The batch runner: claims batches from the registry and answers their lines through
Quanta's serve, as a client.

Each request goes over HTTP to the server of its model's base (``tune.serve_client``),
with a key minted in the batch's tenant's name for this run and revoked when it stops
(the registry also revokes a dead runner's when the batch is claimed again or ends):
adapters, calculator decoding and tenancy apply exactly as to the tenant's own requests,
and a runner can ask nothing its tenant could not. At most ``QUANTA_BATCH_CONCURRENCY``
requests are in flight.

The claim is kept fresh by a heartbeat for as long as the runner works on the batch
(reading its input file and writing its output files too). Every answered line is stored
at once (``registry.batches.put_result``), so a runner that dies loses only the requests
it had in flight: its claim goes stale, and the next runner asks only the lines not
stored; a runner whose write is refused lost its claim and stops. A line serve answered,
with whatever HTTP status, is an output-file line as OpenAI writes them; a line that
could not be asked (no server, a connection error, a timeout) is an error-file line.
Before each request the runner looks at the batch: a cancel stops it (``cancelling``,
then ``cancelled``), as does the end of the completion window (``expired``); either way
the files hold the lines answered so far.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from quanta.registry import BatchRecord, NotFoundError, Registry, utcnow
from quanta.types import ArtifactKind, BatchStatus, FilePurpose
from tune.batches.lines import RequestLine, read_requests
from tune.serve_client import NoServer, model_base, serve_url, tenant_key

log = logging.getLogger(__name__)

# How often a 429 from serve (the tenant's rate or concurrency limit) is retried, after
# its Retry-After (at most MAX_RETRY_AFTER seconds), before it is written as the answer.
RATE_LIMIT_RETRIES = 5
MAX_RETRY_AFTER = 30.0


class Outcome(StrEnum):
    """Why a runner stopped asking a batch's lines."""

    DONE = "done"  # every line answered
    CANCELLED = "cancelled"  # its owner cancelled it
    EXPIRED = "expired"  # its completion window ended
    LOST = "lost"  # another runner holds it now: this one writes nothing more


FINAL_STATUS = {Outcome.DONE: BatchStatus.COMPLETED, Outcome.CANCELLED: BatchStatus.CANCELLED,
                Outcome.EXPIRED: BatchStatus.EXPIRED}


class FinalizeError(Exception):
    """The batch's files cannot be written, and never will be however often a runner
    tries (too large to store, say): the batch fails with ``code`` and this message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Answer:
    """One line's result: ``record`` is its output-file line (``ok``) or error-file line."""

    ok: bool
    record: dict[str, Any]
    succeeded: bool = False  # serve answered 2xx (request_counts.completed)
    usage: dict[str, int] | None = None


class BatchWorker:
    """Claim, answer and finish batches (``run_once``; ``run_forever`` polls).

    ``now`` is the clock the completion window is read against (tests move it);
    ``concurrency`` defaults to ``QUANTA_BATCH_CONCURRENCY``.
    """

    def __init__(self, registry: Registry, worker_id: str | None = None, *,
                 stale_after: float = 60.0, heartbeat_interval: float = 5.0,
                 request_timeout: float = 600.0, concurrency: int | None = None,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.registry = registry
        self.rows = registry.batches
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:batch"
        self.stale_after = stale_after
        self.heartbeat_interval = heartbeat_interval
        self.request_timeout = request_timeout
        self.concurrency = concurrency or registry.settings.batch_concurrency
        self.now = now

    def run_once(self) -> str | None:
        """Take the oldest open batch no runner holds (a dead runner's too), answer its
        lines and finish it; returns its id, None when there was none."""
        self.rows.requeue_stale(self.stale_after)
        batch = self.rows.claim_next(self.worker_id)
        if batch is None:
            return None
        try:
            with self._heartbeat(batch):
                self._run(batch)
        except Exception:  # the claim goes stale and the next runner goes on from here
            log.exception("batch %s failed in runner %s", batch.id, self.worker_id)
        return batch.id

    def run_forever(self, poll_interval: float = 2.0,
                    stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            if self.run_once() is None:
                stop.wait(poll_interval)

    # -- one batch -----------------------------------------------------------------------

    @contextmanager
    def _heartbeat(self, batch: BatchRecord) -> Iterator[None]:
        """Keep the claim fresh while the block runs, from reading the input file to
        writing the output files: any of them may take longer than ``stale_after``."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_interval):
                try:
                    self.rows.heartbeat(batch.id, self.worker_id)
                except Exception:  # a database hiccup: the next beat tries again
                    log.exception("heartbeat of batch %s failed", batch.id)

        thread = threading.Thread(target=beat, name=f"heartbeat {batch.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _run(self, batch: BatchRecord) -> None:
        try:
            path = self.registry.blob_path(
                self.registry.get_file(batch.tenant_id, batch.input_file_id).sha256)
        except NotFoundError:
            self._fail(batch, "file_not_found", f"the input file {batch.input_file_id} no "
                       "longer exists", "input_file_id")
            return
        report = read_requests(path, batch.endpoint)
        if report.errors:  # checked when the batch was created: the file changed since?
            self._fail(batch, "invalid_input_file", report.errors[0], "input_file_id")
            return
        requests = report.requests
        outcome = self._stop_reason(batch)
        if outcome is None:
            if batch.status == BatchStatus.VALIDATING:
                self.rows.advance(batch.id, self.worker_id, BatchStatus.IN_PROGRESS)
            answered = self.rows.answered_lines(batch.id)
            pending = [r for r in requests if r.line not in answered]
            outcome = self._answer(batch, pending) if pending else Outcome.DONE
        if outcome != Outcome.LOST:
            self._finalize(batch, outcome, requests)

    def _stop_reason(self, batch: BatchRecord) -> Outcome | None:
        """Why asking must stop now (the batch as the registry has it), None to go on."""
        row = self.rows.get(batch.id)
        if row is None or row.worker_id != self.worker_id:
            return Outcome.LOST
        if row.cancel_requested or row.status == BatchStatus.CANCELLING:
            return Outcome.CANCELLED
        if row.expires_at is not None and self.now() >= _utc(row.expires_at):
            return Outcome.EXPIRED
        return None

    def _fail(self, batch: BatchRecord, code: str, message: str, param: str | None) -> None:
        self.rows.finish(batch.id, self.worker_id, BatchStatus.FAILED,
                         errors=[{"code": code, "message": message, "param": param,
                                  "line": None}])

    # -- asking serve --------------------------------------------------------------------

    def _answer(self, batch: BatchRecord, pending: list[RequestLine]) -> Outcome:
        """Ask every pending line (at most ``concurrency`` at once), storing each answer
        as it comes; the minted key lives as long as this does (a dead runner's was
        revoked when this one claimed the batch)."""
        with tenant_key(self.registry, batch.tenant_id, self.rows.key_name(batch.id)) as key:
            return asyncio.run(self._answer_all(batch, pending, key))

    async def _answer_all(self, batch: BatchRecord, pending: list[RequestLine],
                          key: str) -> Outcome:
        queue = iter(pending)  # shared by the lanes: each takes the next line
        stopped: list[Outcome] = []
        urls: dict[str, str | NoServer] = {}
        timeout = httpx.Timeout(self.request_timeout, connect=10.0)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                                     timeout=timeout) as client:
            await asyncio.gather(*(self._lane(client, batch, queue, stopped, urls)
                                   for _ in range(self.concurrency)))
        return stopped[0] if stopped else Outcome.DONE

    async def _lane(self, client: httpx.AsyncClient, batch: BatchRecord,
                    queue: Iterator[RequestLine], stopped: list[Outcome],
                    urls: dict[str, str | NoServer]) -> None:
        for request in queue:
            if stopped:
                return
            reason = self._stop_reason(batch)
            if reason is not None:
                stopped.append(reason)
                return
            answer = await self._ask(client, batch, request, urls)
            stored = self.rows.put_result(batch.id, self.worker_id, request.line,
                                          request.custom_id, answer.ok, answer.record,
                                          answer.usage, completed=answer.succeeded)
            if not stored and self._stop_reason(batch) == Outcome.LOST:
                # Refused: another runner holds the batch now, or it is over.
                stopped.append(Outcome.LOST)
                return

    async def _ask(self, client: httpx.AsyncClient, batch: BatchRecord,
                   request: RequestLine, urls: dict[str, str | NoServer]) -> Answer:
        url = urls.get(request.model)
        if url is None:
            url = urls[request.model] = self._serve_url(batch.tenant_id, request.model)
        if isinstance(url, NoServer):
            return _not_asked(request, "model_not_served", str(url))
        try:
            response = await self._post(client, url + request.url, request.body)
        except httpx.TimeoutException:
            return _not_asked(request, "request_timeout", f"serve did not answer within "
                              f"{self.request_timeout:g} seconds")
        except httpx.HTTPError as exc:
            return _not_asked(request, "connection_error",
                              f"could not reach serve at {url}: {exc or type(exc).__name__}")
        return _answered(request, response)

    async def _post(self, client: httpx.AsyncClient, url: str,
                    body: dict[str, Any]) -> httpx.Response:
        """POST, backing off as serve's 429s ask (its tenant limits), a few times."""
        for _ in range(RATE_LIMIT_RETRIES):
            response = await client.post(url, json=body)
            if response.status_code != 429:
                return response
            await asyncio.sleep(_retry_after(response))
        return await client.post(url, json=body)

    def _serve_url(self, tenant_id: str, model: str) -> str | NoServer:
        try:
            return serve_url(self.registry, model_base(self.registry, tenant_id, model))
        except NotFoundError:
            return NoServer(f"the model {model!r} does not exist or you do not have access "
                            "to it")
        except NoServer as exc:
            return exc

    # -- the output and error files ------------------------------------------------------

    def _finalize(self, batch: BatchRecord, outcome: Outcome,
                  requests: list[RequestLine]) -> None:
        """Write the files of the lines answered (in input-line order) and end the batch:
        ``completed`` (through ``finalizing``), ``cancelled`` or ``expired``; ``failed``
        if the files cannot be written at all (``FinalizeError``). Any other error leaves
        the claim to go stale, for the next runner to try again."""
        if outcome == Outcome.DONE and not self.rows.advance(batch.id, self.worker_id,
                                                             BatchStatus.FINALIZING):
            outcome = self._stop_reason(batch) or Outcome.LOST  # cancelled meanwhile?
            if outcome == Outcome.LOST:
                return
        results = self.rows.results(batch.id)
        outputs = [r.record for r in results if r.ok]
        errors = [(r.line, r.record) for r in results if not r.ok]
        if outcome == Outcome.EXPIRED:  # OpenAI lists the lines never asked as expired
            answered = {r.line for r in results}
            errors += [(r.line, _not_asked(r, "batch_expired", "This request could not be "
                                           "executed before the completion window "
                                           "expired.").record)
                       for r in requests if r.line not in answered]
            errors.sort(key=lambda pair: pair[0])
        written: list[str] = []
        try:
            written.append(self._write_file(batch, "output", outputs))
            if errors:
                written.append(self._write_file(batch, "error", [r for _, r in errors]))
        except FinalizeError as exc:
            self._delete_files(batch, written)
            self._fail(batch, exc.code, str(exc), None)
            return
        except BaseException:
            self._delete_files(batch, written)
            raise
        output_id, error_id = written[0], (written[1] if errors else None)
        if not self.rows.finish(batch.id, self.worker_id, FINAL_STATUS[outcome],
                                output_file_id=output_id, error_file_id=error_id):
            self._delete_files(batch, written)  # another runner took the batch over

    def _write_file(self, batch: BatchRecord, kind: str, lines: list[dict[str, Any]]) -> str:
        """Store one of the batch's files; ``FinalizeError`` if it is larger than a file
        may be (``QUANTA_MAX_UPLOAD_TOTAL_BYTES``)."""
        limit = self.registry.settings.max_upload_total_bytes
        with self.registry.staging("batch") as directory:
            path = Path(directory) / f"{kind}.jsonl"
            with path.open("w", encoding="utf-8") as out:
                for line in lines:
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
            size = path.stat().st_size
            if size > limit:
                raise FinalizeError(f"{kind}_file_too_large", f"the batch's {kind} file "
                                    f"would be {size} bytes; files are at most {limit} "
                                    "bytes (QUANTA_MAX_UPLOAD_TOTAL_BYTES)")
            row = self.registry.add_file(batch.tenant_id, f"{batch.id}_{kind}.jsonl",
                                         FilePurpose.BATCH_OUTPUT, path, format="jsonl",
                                         records=len(lines), limit=limit)
        return row.id

    def _delete_files(self, batch: BatchRecord, file_ids: list[str]) -> None:
        for file_id in file_ids:
            self.registry.delete(ArtifactKind.FILE, file_id, batch.tenant_id)


def _answered(request: RequestLine, response: httpx.Response) -> Answer:
    """Serve's answer as OpenAI writes it: a 2xx answer is an output-file line; any other
    (a 400 for a bad body, say) goes, with its status and body, to the error file, as
    OpenAI's batches write failed requests."""
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"message": response.text[:2000], "type": "server_error",
                          "param": None, "code": None}}
    request_id = (response.headers.get("x-request-id")
                  or (body.get("id") if isinstance(body, dict) else None)
                  or f"req_{secrets.token_hex(12)}")
    succeeded = response.is_success
    return Answer(ok=succeeded, succeeded=succeeded,
                  usage=_usage(body) if succeeded else None,
                  record={"id": _request_id(), "custom_id": request.custom_id,
                          "response": {"status_code": response.status_code,
                                       "request_id": request_id, "body": body},
                          "error": None})


def _not_asked(request: RequestLine, code: str, message: str) -> Answer:
    """An error-file line: a request that got no answer from serve."""
    return Answer(ok=False, record={"id": _request_id(), "custom_id": request.custom_id,
                                    "response": None,
                                    "error": {"code": code, "message": message}})


def _usage(body: Any) -> dict[str, int] | None:
    """An answer's tokens in the batch's usage terms (chat and completions count prompt
    and completion tokens; responses input and output tokens)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None

    def number(*path: str) -> int:
        value: Any = usage
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    input_tokens = number("input_tokens") or number("prompt_tokens")
    output_tokens = number("output_tokens") or number("completion_tokens")
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "total_tokens": number("total_tokens") or input_tokens + output_tokens,
            "cached_tokens": (number("input_tokens_details", "cached_tokens")
                              or number("prompt_tokens_details", "cached_tokens")),
            "reasoning_tokens": (number("output_tokens_details", "reasoning_tokens")
                                 or number("completion_tokens_details", "reasoning_tokens"))}


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _request_id() -> str:
    return f"batch_req_{secrets.token_hex(12)}"


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value

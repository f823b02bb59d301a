"""A batch's input file: OpenAI's request lines, read and checked one line at a time.

Each line is ``{"custom_id": str, "method": "POST", "url": <endpoint>, "body": {...}}``.
The same reader checks an upload (purpose ``batch``), the file again when a batch is
created from it (then every line's ``url`` must be the batch's endpoint), and gives the
runner the requests to send; every problem names its line, as OpenAI's do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quanta.data.reader import InvalidJSON, json_type, loads
from quanta.data.text import find_not_text

# The endpoints Quanta's serve answers that OpenAI's batches may name.
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/responses")
MAX_REQUESTS = 50_000  # OpenAI's limits on a batch's input file
MAX_INPUT_BYTES = 200 * 1024 * 1024
MAX_CUSTOM_ID = 512  # the length batch_result.custom_id holds


@dataclass(frozen=True)
class RequestLine:
    """One request of a batch: its 1-based line in the input file, as results name it."""

    line: int
    custom_id: str
    url: str
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body["model"])


@dataclass
class InputReport:
    """The requests read from an input file, and the problems found (each ``line N: ...``);
    the file is usable only without problems."""

    requests: list[RequestLine] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_requests(path: Path, endpoint: str | None = None) -> InputReport:
    """Every request line of ``path`` (``endpoint``: the batch's, which each line's url
    must name). Reading stops after the first problems once there are many: a file of
    bad lines is answered by its first few."""
    report = InputReport()
    size = path.stat().st_size
    if size > MAX_INPUT_BYTES:
        report.errors.append(f"the file is {size} bytes; a batch's input file may be at most "
                             f"{MAX_INPUT_BYTES} bytes (200 MB)")
        return report
    first_line: dict[str, int] = {}
    for lineno, value in _lines(path):
        if isinstance(value, str):
            report.errors.append(f"line {lineno}: {value}")
        elif len(report.requests) == MAX_REQUESTS:
            report.errors.append(f"line {lineno}: a batch may hold at most {MAX_REQUESTS} "
                                 "requests")
            break
        else:
            problem = _line_problem(value, endpoint)
            if problem is None and value["custom_id"] in first_line:
                problem = (f"custom_id {value['custom_id']!r} is already used on line "
                           f"{first_line[value['custom_id']]}; each request needs its own")
            if problem is not None:
                report.errors.append(f"line {lineno}: {problem}")
            else:
                first_line[value["custom_id"]] = lineno
                report.requests.append(RequestLine(lineno, value["custom_id"], value["url"],
                                                   value["body"]))
        if len(report.errors) >= 100:
            break
    if not report.requests and not report.errors:
        report.errors.append("the file holds no requests")
    return report


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, JSON value) for each line that is not blank; the value is a string
    saying what is wrong where the line is not JSON."""
    with path.open("rb") as stream:
        for lineno, raw in enumerate(stream, 1):
            if lineno == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, f"not UTF-8 text (bad byte at column {exc.start + 1})"
                continue
            if not text.strip():
                continue
            try:
                yield lineno, loads(text)
            except (json.JSONDecodeError, InvalidJSON) as exc:
                yield lineno, f"not valid JSON: {exc.msg} (column {exc.colno})"


def _line_problem(value: Any, endpoint: str | None) -> str | None:
    """What is wrong with one parsed line (None: a request the batch can send)."""
    if not isinstance(value, dict):
        return f"a request must be a JSON object, not {json_type(value)}"
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return ("custom_id is missing" if custom_id is None
                else "custom_id must be a non-empty string")
    if len(custom_id) > MAX_CUSTOM_ID:
        return f"custom_id is longer than {MAX_CUSTOM_ID} characters"
    if value.get("method") != "POST":
        return f"method must be 'POST', not {value.get('method')!r}"
    url = value.get("url")
    if url not in ENDPOINTS:
        return f"url must be one of {', '.join(ENDPOINTS)}, not {url!r}"
    if endpoint is not None and url != endpoint:
        return f"url {url!r} is not the batch's endpoint {endpoint!r}"
    body = value.get("body")
    if not isinstance(body, dict):
        return ("body is missing" if body is None
                else f"body must be a JSON object, not {json_type(body)}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "body.model is missing" if model is None else "body.model must be a string"
    if body.get("stream") not in (None, False):
        return "body.stream: streaming is not supported in batches"
    not_text = find_not_text(value)
    if not_text is not None:
        where, problem = not_text
        return f"{where} {problem}: send text"
    return None

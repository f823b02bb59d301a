"""Validate whole dataset files (or uploaded bytes) and read them as normalised chat examples.

Validation never stops at the first problem: it collects every error (up to
``MAX_ERRORS``) so a user fixes a file in one pass rather than one line per run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quanta.data.errors import DatasetError
from quanta.data.formats import FORMATS, detect_format, normalise_record, record_topic
from quanta.data.reader import RawRecord, iter_jsonl, parse_records
from quanta.data.text import find_not_text

MAX_ERRORS = 50


@dataclass
class ValidationReport:
    """What validating one file found: its format, how many records, and every error (capped)."""

    path: str
    format: str | None
    records: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list, repr=False)
    topics: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the file is usable: at least one record and no errors."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise one ``DatasetError`` listing every error, if there are any."""
        if self.errors:
            raise DatasetError.from_errors(self.path, self.errors)

    def add_error(self, message: str) -> None:
        """Record an error; past ``MAX_ERRORS`` only the count grows."""
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)


def validate_bytes(data: bytes, filename: str, format: str | None = None) -> ValidationReport:
    """Validate an uploaded file's bytes; ``format`` is detected from the first record if None."""
    records, parse_errors = parse_records(data, filename)
    return _check_records([*parse_errors, *records], filename, format, keep_examples=True)


def validate_upload(path: Path, filename: str, format: str | None = None) -> ValidationReport:
    """Validate an uploaded file on disk without holding it in memory.

    JSON Lines (what OpenAI's fine-tuning API takes) is checked one line at a time and no
    examples are kept; a file that starts with ``[`` is one JSON document and is parsed
    whole, as ``validate_file`` does.
    """
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"[") or (not head and not fh.read(1)):  # a document, or blank
            fh.seek(0)
            return validate_bytes(fh.read(), filename, format)
        fh.seek(0)
        return _check_records(iter_jsonl(fh, filename), filename, format, keep_examples=False)


def _check_records(items: Iterable[RawRecord | str], filename: str, format: str | None,
                   keep_examples: bool) -> ValidationReport:
    """Normalise every record (error strings pass straight into the report)."""
    report = ValidationReport(path=filename, format=format)
    if format is not None and format not in FORMATS:
        report.format = None
        report.add_error(f"{filename}: unknown format {format!r}; expected one of "
                         f"{', '.join(FORMATS)}")
        return report
    topics: Counter[str] = Counter()
    for raw in items:
        if isinstance(raw, str):
            report.add_error(raw)
            continue
        report.records += 1
        where = f"{filename}:{raw.location}"
        not_text = find_not_text(raw.value)
        if not_text is not None:  # stored, then echoed in events and results: refuse it
            field, problem = not_text
            report.add_error(f"{where}: {field or 'the record'} {problem}")
            continue
        if report.format is None:
            try:
                report.format = detect_format(raw.value)
            except DatasetError as exc:
                report.add_error(f"{where}: {exc}")
                break
        example, errors = normalise_record(raw.value, report.format)
        for message in errors:
            report.add_error(f"{where}: {message}")
        if example is not None and keep_examples:
            report.examples.append(example)
        topic = record_topic(raw.value)
        if topic:
            topics[topic] += 1
    report.topics = dict(sorted(topics.items()))
    if not report.records and not report.error_count:
        report.add_error(f"{filename}: no records")
    hidden = report.error_count - len(report.errors)
    if hidden > 0:
        report.errors.append(f"{filename}: ... and {hidden} more errors not shown")
    return report


def validate_file(path: Path | str, format: str | None = None) -> ValidationReport:
    """Validate a dataset file on disk; a missing or unreadable file is reported, not raised."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        report = ValidationReport(path=str(path), format=format)
        report.add_error(f"{path}: cannot read file: {exc.strerror or exc}")
        return report
    return validate_bytes(data, str(path), format)


def read_examples(path: Path | str, format: str | None = None) -> list[dict[str, Any]]:
    """Read a dataset as normalised examples, raising ``DatasetError`` listing all errors.

    Chat, camel and alpaca give ``{"messages": [...]}``; preference gives
    ``{"prompt": [...], "chosen": [...], "rejected": [...]}``.
    """
    report = validate_file(path, format)
    report.raise_for_errors()
    return report.examples

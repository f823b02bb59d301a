"""Turn raw bytes into JSON records, remembering where each came from (line or record number).

A file is JSON Lines unless it parses as a single JSON document: a list of
objects (located by 1-based record number) or one pretty-printed object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO


@dataclass(frozen=True)
class RawRecord:
    """One parsed JSON value and its human location: ``"3"`` (line 3) or ``"record 3"``."""

    location: str
    value: Any


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages users understand."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def loads(text: str) -> Any:
    """``json.loads`` whose every failure is a ``json.JSONDecodeError``-like ValueError:
    nesting too deep for the parser (RecursionError) and integers past Python's digit
    limit (ValueError) are reported like any other invalid JSON, never raised raw."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise InvalidJSON("nested too deeply") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string"
        raise InvalidJSON(str(exc).split(";")[0]) from None


class InvalidJSON(ValueError):
    """JSON the standard parser refuses for its size rather than its syntax."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.msg, self.lineno, self.colno = message, 1, 1


def parse_records(data: bytes, name: str) -> tuple[list[RawRecord], list[str]]:
    """Parse ``data`` into records; returns them with every parse error (``name:line: ...``)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [f"{name}: not UTF-8 text (bad byte at offset {exc.start})"]
    if not text.strip():
        return [], [f"{name}: file is empty"]

    head = text.lstrip()
    lines = [line for line in text.split("\n") if line.strip()]
    if head.startswith("[") or (head.startswith("{") and len(lines) > 1):
        try:
            document = loads(text)
        except (json.JSONDecodeError, InvalidJSON) as exc:
            # "Extra data" after a first complete value means JSON Lines, not a broken list.
            if head.startswith("[") and exc.msg != "Extra data":
                return [], [f"{name}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"]
        else:
            if isinstance(document, list):
                return [RawRecord(f"record {i}", v) for i, v in enumerate(document, 1)], []
            return [RawRecord("record 1", document)], []
    return _parse_jsonl(text, name)


def _parse_jsonl(text: str, name: str) -> tuple[list[RawRecord], list[str]]:
    """JSON Lines: one value per line; blank lines are skipped, bad lines reported by number."""
    records: list[RawRecord] = []
    errors: list[str] = []
    # split("\n"), not splitlines(): U+2028 may legally appear inside a JSON string.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(RawRecord(str(lineno), loads(line)))
        except (json.JSONDecodeError, InvalidJSON) as exc:
            errors.append(f"{name}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})")
    return records, errors


def iter_jsonl(stream: BinaryIO, name: str) -> Iterator[RawRecord | str]:
    """JSON Lines read one line at a time: yields records, or error messages for bad lines.

    Memory stays bounded by the longest line, whatever the file's size (uploads).
    """
    for lineno, raw in enumerate(stream, 1):
        if lineno == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            line = raw.decode("utf-8").removesuffix("\n")
        except UnicodeDecodeError as exc:
            yield f"{name}:{lineno}: not UTF-8 text (bad byte at column {exc.start + 1})"
            continue
        if not line.strip():
            continue
        try:
            yield RawRecord(str(lineno), loads(line))
        except (json.JSONDecodeError, InvalidJSON) as exc:
            yield f"{name}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})"

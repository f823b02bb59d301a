"""Stream a ``multipart/form-data`` upload straight to a temporary file, with a size limit.

Starlette's ``request.form()`` spools a whole file part before the route sees it, with no
limit; here the body is parsed as it arrives (python-multipart's push parser), the file
part is written to disk chunk by chunk, and the upload stops with 413 as soon as it
passes ``limit`` bytes, so an oversized upload never fills the disk.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from quanta.registry import owner_tag
from tune.api.errors import HTTPBadRequest, HTTPPayloadTooLarge

MAX_FIELD_BYTES = 4096  # one non-file part
MAX_FIELDS = 16  # non-file parts in one upload (OpenAI's form has two: purpose, file)
MAX_FIELDS_BYTES = 64 * 1024  # all of them together


@dataclass
class Form:
    """The parsed form: plain fields and the one file part (on disk)."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    path: Path | None = None
    size: int = 0

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def read_form(request: Any, limit: int, tmp_dir: Path, file_field: str = "file"
                      ) -> Form:
    """Parse ``request``'s multipart body; the caller must ``discard()`` the result.
    ``file_field``: the part streamed to disk (``file`` for /v1/files, ``data`` for an
    upload's part), with or without a filename."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise HTTPBadRequest(f"Expected a multipart/form-data body with a '{file_field}' "
                             "part", param=file_field, code="invalid_content_type")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPPayloadTooLarge(f"File too large: the limit is {limit} bytes",
                                  param=file_field)

    upload = Form()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"headers": {}, "field": b"", "value": b"", "name": None,
                             "out": None, "buf": bytearray(), "fields": 0, "field_bytes": 0,
                             "ended": False}

    def on_part_begin() -> None:
        state["headers"], state["name"], state["out"] = {}, None, None
        state["buf"] = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        if state["name"] == file_field:
            if upload.path is not None:
                raise HTTPBadRequest(f"Send exactly one '{file_field}' part", param=file_field)
            if b"filename" in disp:
                upload.filename = os.path.basename(disp[b"filename"].decode("utf-8",
                                                                            "replace"))
            fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=owner_tag(), suffix=".upload")
            upload.path = Path(name)
            state["out"] = os.fdopen(fd, "wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if state["out"] is not None:
            upload.size += len(chunk)
            if upload.size > limit:
                raise HTTPPayloadTooLarge(f"File too large: the limit is {limit} bytes",
                                           param=file_field)
            state["out"].write(chunk)
        else:
            state["buf"] += chunk
            state["field_bytes"] += len(chunk)
            if len(state["buf"]) > MAX_FIELD_BYTES:
                raise HTTPBadRequest(f"Form field {state['name']!r} is too long",
                                     param=state["name"])
            if state["field_bytes"] > MAX_FIELDS_BYTES:
                raise HTTPBadRequest(f"The form's fields exceed {MAX_FIELDS_BYTES} bytes "
                                     "together", param=file_field)

    def on_part_end() -> None:
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None
        elif state["name"]:
            state["fields"] += 1
            if state["fields"] > MAX_FIELDS:
                raise HTTPBadRequest(f"More than {MAX_FIELDS} form fields", param=file_field)
            upload.fields[state["name"]] = state["buf"].decode("utf-8", "replace")

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_end": on_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if not state["ended"]:
            raise HTTPBadRequest("The multipart body has no closing boundary: the upload was "
                                 "cut short", param=file_field, code="invalid_multipart")
    except MultipartParseError as exc:
        _abandon(state, upload)
        raise HTTPBadRequest(f"Malformed multipart body: {exc}", param=file_field,
                             code="invalid_multipart") from None
    except BaseException:
        _abandon(state, upload)
        raise
    return upload


def _abandon(state: dict[str, Any], upload: Form) -> None:
    if state["out"] is not None:
        state["out"].close()
    upload.discard()

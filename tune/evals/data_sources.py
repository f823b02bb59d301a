"""An eval run's data source: its items (an uploaded ``evals`` file or inline content),
and, for a ``completions`` run, how each item becomes the messages serve is asked.

A run's ``data_source`` is parsed once here when the run is created (the API stores its
normalised form, which is also what the run echoes) and again by the worker that runs
it. Items are JSON objects, one a line in a file; a line ``{"item": {...}, "sample":
{...}}`` (OpenAI's ``EvalJsonlFileContentSource`` shape) carries a sample already
taken, which a ``jsonl`` run grades as it is. Item ``i`` (from 0, in file order) is the
run's ``datasource_item_id`` ``i``.

Input messages are normalised to one shape, a message whose content is one text part
(``{"role", "content": {"type": "input_text", "text"}, "type": "message"}``): it is the
one of OpenAI's two message shapes the published schema tells apart from the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quanta.data.reader import RawRecord, iter_jsonl
from quanta.data.text import find_not_text
from tune.evals.errors import EvalRequestError
from tune.evals.item_schemas import ItemChecker, SchemaTooCostly
from tune.graders.templates import (
    TemplateError,
    check_template,
    lookup,
    render,
    rendered_length,
)

MAX_ITEMS = 10_000  # per run: a run is graded item by item, each stored
MAX_INPUT_BYTES = 256 * 1024  # an item's input messages, rendered (UTF-8)
MAX_COMPLETION_TOKENS = 8192
DEFAULT_MAX_COMPLETION_TOKENS = 1024
ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")
_ITEM_PATH = re.compile(r"item(?:\.[A-Za-z_][A-Za-z0-9_\-]*|\[\d+\])+")


@dataclass(frozen=True)
class SourceItem:
    """One item of a run: its index, the item, the sample it came with (if any), and
    where it came from, for error messages (``line 3``, ``...content[2]``)."""

    index: int
    item: dict[str, Any]
    sample: dict[str, Any] | None
    where: str


@dataclass(frozen=True)
class Sampling:
    """A completions run's sampling parameters, with OpenAI's defaults."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 42
    max_completion_tokens: int = DEFAULT_MAX_COMPLETION_TOKENS
    response_format: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunSource:
    """A run's data source, parsed: where its items are and, for ``completions``, the
    model, the messages (a ``template`` or an ``item_reference``) and the sampling."""

    type: str
    file_id: str | None = None
    content: list[dict[str, Any]] | None = None
    model: str | None = None
    template: list[dict[str, Any]] | None = None
    item_reference: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    sampling_params: dict[str, Any] | None = None  # as given, for the echo

    def wire(self) -> dict[str, Any]:
        """The data source in OpenAI's shape, as the run stores and echoes it."""
        source: dict[str, Any] = ({"type": "file_id", "id": self.file_id}
                                  if self.file_id is not None
                                  else {"type": "file_content", "content": self.content})
        wire: dict[str, Any] = {"type": self.type, "source": source}
        if self.type == "completions":
            wire["model"] = self.model
            wire["input_messages"] = (
                {"type": "template", "template": self.template} if self.template is not None
                else {"type": "item_reference", "item_reference": self.item_reference})
            if self.sampling_params:
                wire["sampling_params"] = self.sampling_params
        return wire

    def messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        """The chat messages serve is asked for ``item``: the template rendered, or the
        messages the item references. TemplateError if the item lacks a variable, or
        if the messages come to more than MAX_INPUT_BYTES (a template repeating a long
        field could make each item's prompt, stored with its sample, any size)."""
        messages = self._messages(item)
        size = sum(len(m["content"].encode()) for m in messages)
        if size > MAX_INPUT_BYTES:
            raise TemplateError(f"the input messages come to {size} bytes, more than "
                                f"{MAX_INPUT_BYTES // 1024} KiB")
        return messages

    def _messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        if self.template is not None:
            left = MAX_INPUT_BYTES  # counted before any is built (a character: 1+ bytes)
            for message in self.template:
                left -= rendered_length(message["content"]["text"], item, {}, left + 1)
                if left < 0:
                    raise TemplateError("the input messages come to more than "
                                        f"{MAX_INPUT_BYTES // 1024} KiB")
            return [{"role": _chat_role(m["role"]),
                     "content": render(m["content"]["text"], item, {})}
                    for m in self.template]
        assert self.item_reference is not None
        found = lookup(self.item_reference, {"item": item})
        if isinstance(found, str):
            return [{"role": "user", "content": found}]
        if not isinstance(found, list) or not found:
            raise TemplateError(f"{self.item_reference} is not a list of messages")
        messages = []
        for index, message in enumerate(found):
            if (not isinstance(message, dict) or message.get("role") not in ROLES
                    or not isinstance(message.get("content"), str)):
                raise TemplateError(f"{self.item_reference}[{index}] is not a message "
                                    "with a role and text content")
            messages.append({"role": _chat_role(message["role"]),
                             "content": message["content"]})
        return messages


def _chat_role(role: str) -> str:
    return "system" if role == "developer" else role  # chat templates know system


# -- parsing a run's data_source ----------------------------------------------------------

def parse_data_source(raw: Any) -> RunSource:
    """A run's ``data_source`` (EvalRequestError naming the field for anything else)."""
    if not isinstance(raw, dict):
        raise EvalRequestError("data_source: expected an object", "data_source")
    kind = raw.get("type")
    if kind == "responses":
        raise EvalRequestError(
            "data_source.type: 'responses' runs are not supported by Quanta's evals; use "
            "'completions' (the same models through chat completions) or 'jsonl'",
            "data_source.type")
    if kind not in ("jsonl", "completions"):
        raise EvalRequestError(f"data_source.type: expected 'jsonl' or 'completions', got "
                               f"{kind!r}", "data_source.type")
    allowed = {"type", "source"} | ({"model", "input_messages", "sampling_params"}
                                    if kind == "completions" else set())
    _no_other_keys(raw, allowed, "data_source")
    file_id, content = _source(raw.get("source"))
    if kind == "jsonl":
        return RunSource(type=kind, file_id=file_id, content=content)
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise EvalRequestError("data_source.model: a completions run names the model to "
                               "sample", "data_source.model")
    template, reference = _input_messages(raw.get("input_messages"))
    sampling, given = _sampling(raw.get("sampling_params"))
    return RunSource(type=kind, file_id=file_id, content=content, model=model,
                     template=template, item_reference=reference, sampling=sampling,
                     sampling_params=given)


def _no_other_keys(value: dict[str, Any], allowed: set[str], param: str) -> None:
    extra = sorted(set(value) - allowed)
    if extra:
        raise EvalRequestError(f"{param}.{extra[0]}: not a field Quanta takes here",
                               f"{param}.{extra[0]}")


def _source(source: Any) -> tuple[str | None, list[dict[str, Any]] | None]:
    param = "data_source.source"
    if not isinstance(source, dict):
        raise EvalRequestError(f"{param}: expected an object (file_id or file_content)", param)
    kind = source.get("type")
    if kind == "stored_completions":
        raise EvalRequestError(f"{param}.type: Quanta does not store completions; upload "
                               "the items as an evals file", f"{param}.type")
    if kind == "file_id":
        _no_other_keys(source, {"type", "id"}, param)
        if not isinstance(source.get("id"), str) or not source["id"]:
            raise EvalRequestError(f"{param}.id: the id of an uploaded evals file",
                                   f"{param}.id")
        return source["id"], None
    if kind == "file_content":
        _no_other_keys(source, {"type", "content"}, param)
        content = source.get("content")
        if not isinstance(content, list) or not content:
            raise EvalRequestError(f"{param}.content: a list of at least one "
                                   '{"item": ...}', f"{param}.content")
        if len(content) > MAX_ITEMS:
            raise EvalRequestError(f"{param}.content: at most {MAX_ITEMS} items",
                                   f"{param}.content")
        items = [_wrapped(entry, f"{param}.content[{i}]") for i, entry in enumerate(content)]
        return None, [{"item": i.item, **({"sample": i.sample} if i.sample is not None
                                          else {})} for i in items]
    raise EvalRequestError(f"{param}.type: expected 'file_id' or 'file_content', got "
                           f"{kind!r}", f"{param}.type")


def _wrapped(entry: Any, param: str) -> SourceItem:
    if not isinstance(entry, dict) or not isinstance(entry.get("item"), dict):
        raise EvalRequestError(f"{param}.item: each entry is {{\"item\": {{...}}}}",
                               f"{param}.item")
    _no_other_keys(entry, {"item", "sample"}, param)
    sample = entry.get("sample")
    if sample is not None and not isinstance(sample, dict):
        raise EvalRequestError(f"{param}.sample: expected an object", f"{param}.sample")
    return SourceItem(index=0, item=entry["item"], sample=sample, where=param)


def _input_messages(raw: Any) -> tuple[list[dict[str, Any]] | None, str | None]:
    param = "data_source.input_messages"
    if not isinstance(raw, dict):
        raise EvalRequestError(f"{param}: a template of messages, or an item_reference",
                               param)
    kind = raw.get("type")
    if kind == "item_reference":
        _no_other_keys(raw, {"type", "item_reference"}, param)
        reference = raw.get("item_reference")
        if not isinstance(reference, str) or not _ITEM_PATH.fullmatch(reference):
            raise EvalRequestError(f"{param}.item_reference: a path into the item, such as "
                                   "'item.messages'", f"{param}.item_reference")
        return None, reference
    if kind != "template":
        raise EvalRequestError(f"{param}.type: expected 'template' or 'item_reference'",
                               f"{param}.type")
    _no_other_keys(raw, {"type", "template"}, param)
    template = raw.get("template")
    if not isinstance(template, list) or not template or len(template) > 64:
        raise EvalRequestError(f"{param}.template: a list of 1 to 64 messages",
                               f"{param}.template")
    return [_message(m, f"{param}.template[{i}]") for i, m in enumerate(template)], None


def _message(raw: Any, param: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise EvalRequestError(f"{param}: expected a message object", param)
    _no_other_keys(raw, {"role", "content", "type"}, param)
    if raw.get("type", "message") != "message":
        raise EvalRequestError(f"{param}.type: expected 'message'", f"{param}.type")
    role = raw.get("role")
    if role not in ROLES:
        raise EvalRequestError(f"{param}.role: one of {', '.join(ROLES)}", f"{param}.role")
    text = _text(raw.get("content"), f"{param}.content")
    try:
        check_template(text)
        if "sample" in {m.split(".")[0].split("[")[0].strip()
                        for m in re.findall(r"\{\{\s*([^{}]*?)\s*\}\}", text)}:
            raise TemplateError("input messages are rendered before there is a sample: "
                                "use {{item.*}} variables only")
    except TemplateError as exc:
        raise EvalRequestError(f"{param}.content: {exc}", f"{param}.content") from None
    part = "output_text" if role == "assistant" else "input_text"
    return {"role": role, "content": {"type": part, "text": text}, "type": "message"}


def _text(content: Any, param: str) -> str:
    """A message's content as one text: a string, a text part, or a list of them."""
    parts = content if isinstance(content, list) else [content]
    texts = []
    for index, part in enumerate(parts):
        where = f"{param}[{index}]" if isinstance(content, list) else param
        if isinstance(part, str):
            texts.append(part)
        elif (isinstance(part, dict) and part.get("type") in TEXT_PARTS
              and isinstance(part.get("text"), str)):
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise EvalRequestError(f"{where}: content of type {kind!r} is not supported "
                                   "(Quanta's models read text)", where)
    if not texts:
        raise EvalRequestError(f"{param}: empty content", param)
    return "\n".join(texts)


def _sampling(raw: Any) -> tuple[Sampling, dict[str, Any] | None]:
    param = "data_source.sampling_params"
    if raw is None:
        return Sampling(), None
    if not isinstance(raw, dict):
        raise EvalRequestError(f"{param}: expected an object", param)
    if "tools" in raw:
        raise EvalRequestError(f"{param}.tools: tool calls are not supported by Quanta's "
                               "evals", f"{param}.tools")
    _no_other_keys(raw, {"temperature", "top_p", "seed", "max_completion_tokens",
                         "reasoning_effort", "response_format"}, param)
    values: dict[str, Any] = {}
    bounds = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}
    for key, (low, high) in bounds.items():
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                low <= value <= high):
            raise EvalRequestError(f"{param}.{key}: a number from {low:g} to {high:g}",
                                   f"{param}.{key}")
        values[key] = float(value)
    for key, (low, high) in {"seed": (-(2**63), 2**63 - 1),
                             "max_completion_tokens": (1, MAX_COMPLETION_TOKENS)}.items():
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise EvalRequestError(f"{param}.{key}: an integer from {low} to {high}",
                                   f"{param}.{key}")
        values[key] = value
    response_format = raw.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise EvalRequestError(f"{param}.response_format: expected an object",
                               f"{param}.response_format")
    given = {k: v for k, v in raw.items() if v is not None}
    return Sampling(**values, response_format=response_format), given or None


# -- items ---------------------------------------------------------------------------------

def content_items(content: list[dict[str, Any]]) -> list[SourceItem]:
    """A ``file_content`` source's items (already checked by :func:`parse_data_source`)."""
    return [SourceItem(index=i, item=entry["item"], sample=entry.get("sample"),
                       where=f"data_source.source.content[{i}]")
            for i, entry in enumerate(content)]


def file_items(path: Path, name: str) -> list[SourceItem]:
    """An evals file's items, one JSON object a line (EvalRequestError naming the first
    line that is not one)."""
    report = read_lines(path, name)
    if report.errors:
        raise EvalRequestError(report.errors[0], "data_source.source.id",
                               code="invalid_file_format")
    return report.items


@dataclass
class LinesReport:
    """What reading an evals file found: its items and the problems (each naming its
    line)."""

    items: list[SourceItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_lines(path: Path, name: str, max_errors: int = 20) -> LinesReport:
    """Read an evals file line by line: each line a JSON object, the item itself or
    ``{"item": {...}, "sample": {...}}``; blank lines are skipped."""
    report = LinesReport()
    with open(path, "rb") as stream:
        for record in iter_jsonl(stream, name):
            if len(report.errors) >= max_errors:
                break
            if isinstance(record, str):
                report.errors.append(record)
                continue
            problem = _line_problem(record)
            if problem:
                report.errors.append(f"{name}:{record.location}: {problem}")
                continue
            if len(report.items) >= MAX_ITEMS:
                report.errors.append(f"{name}: more than {MAX_ITEMS} items")
                break
            value = record.value
            wrapped = set(value) <= {"item", "sample"} and isinstance(value.get("item"), dict)
            report.items.append(SourceItem(
                index=len(report.items), item=value["item"] if wrapped else value,
                sample=value.get("sample") if wrapped else None,
                where=f"line {record.location}"))
    if not report.items and not report.errors:
        report.errors.append(f"{name}: the file has no items")
    return report


def _line_problem(record: RawRecord) -> str | None:
    value = record.value
    if not isinstance(value, dict):
        return "expected a JSON object (an item, or {\"item\": {...}})"
    not_text = find_not_text(value)
    if not_text is not None:
        return f"{not_text[0] or 'a key'} {not_text[1]}"
    if "item" in value and set(value) <= {"item", "sample"}:
        if not isinstance(value["item"], dict):
            return "\"item\" must be a JSON object"
        if value.get("sample") is not None and not isinstance(value["sample"], dict):
            return "\"sample\" must be a JSON object"
    return None


def check_items(items: Iterable[SourceItem], item_schema: dict[str, Any] | None,
                file_param: str) -> None:
    """Refuse, naming the item (its file's line, or its place in the inline content), an
    item that does not match the eval's ``item_schema`` (checked with
    :class:`~tune.evals.item_schemas.ItemChecker`: no retrieval, no tenant regexes, a
    budget of steps), or a schema that cannot be applied to it."""
    if not item_schema:
        return
    try:
        checker = ItemChecker(item_schema)
    except EvalRequestError as exc:  # stored before Quanta refused it at eval creation
        raise EvalRequestError(f"the eval's {exc.message}", exc.param) from None
    for source_item in items:
        inline = source_item.where.startswith("data_source.")
        param = f"{source_item.where}.item" if inline else file_param
        where = source_item.where if inline else f"{file_param}: {source_item.where}"
        try:
            error = checker.first_error(source_item.item)
        except SchemaTooCostly as exc:
            raise EvalRequestError(f"{where}: {exc}; give the eval a simpler item_schema",
                                   param) from None
        except EvalRequestError as exc:
            raise EvalRequestError(f"{where}: the eval's {exc.message}", exc.param) from None
        if error is not None:
            at = "/".join(map(str, error.absolute_path))
            raise EvalRequestError(
                f"{where}: the item does not match the eval's item_schema: {error.message[:500]}"
                + (f" (at {at})" if at else ""), param)


def check_messages(source: RunSource, items: Iterable[SourceItem], param: str) -> None:
    """Refuse (naming the item) an item the input messages cannot be made of."""
    if source.type != "completions":
        return
    for source_item in items:
        try:
            source.messages(source_item.item)
        except TemplateError as exc:
            raise EvalRequestError(f"{param}: {source_item.where}: {exc}", param) from None

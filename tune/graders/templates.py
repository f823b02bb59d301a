"""``{{ item.field }}`` and ``{{ sample.output_text }}`` templates, as OpenAI's graders use.

Two namespaces: ``item`` (the dataset row) and ``sample`` (the model's answer:
``output_text``, ``output_json`` when the answer is JSON, ``choices``). Paths go into
objects and arrays (``{{ item.meta.answers[0] }}``). Strings render as they are, other
values as JSON. A path that does not exist raises ``TemplateError`` (OpenAI reports it as
``invalid_variable_error``).
"""

from __future__ import annotations

import json
import re
from typing import Any

_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]")
NAMESPACES = ("item", "sample")
# What one template may expand to: a template that repeats a large field thousands of
# times would otherwise build gigabytes from a request of kilobytes.
MAX_RENDERED_CHARS = 256 * 1024


class TemplateError(ValueError):
    """A template names a variable that the item or sample does not have."""


def sample_from_text(text: str) -> dict[str, Any]:
    """The ``sample`` namespace for a plain completion (``output_json`` if it parses)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return {"output_text": text,
            "output_json": parsed if isinstance(parsed, dict | list) else None,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


def lookup(path: str, namespaces: dict[str, Any]) -> Any:
    """The value at ``item.a.b[0]``-style ``path``."""
    steps = list(_STEP.finditer(path))
    if not steps or "".join(m.group(0) for m in steps) != path:
        raise TemplateError(f"cannot read the template variable {{{{{path}}}}}")
    head = steps[0].group(1)
    if head not in namespaces:
        raise TemplateError(f"template variable {{{{{path}}}}}: expected it to start with "
                            f"{' or '.join(NAMESPACES)}")
    value = namespaces[head]
    for step in steps[1:]:
        key, index = step.group(1), step.group(2)
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            raise TemplateError(f"template variable {{{{{path}}}}} is not in the "
                                f"{head}")
    return value


def _rendered(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def rendered_length(template: str, item: dict[str, Any], sample: dict[str, Any],
                    stop_after: int = MAX_RENDERED_CHARS) -> int:
    """How long ``render`` would make ``template``, counted without building it; counting
    stops once past ``stop_after``. Variables that do not resolve count as empty (render
    reports them)."""
    namespaces = {"item": item, "sample": sample}
    sizes: dict[str, int] = {}
    total = len(_VARIABLE.sub("", template))
    for match in _VARIABLE.finditer(template):
        path = match.group(1)
        if path not in sizes:
            try:
                sizes[path] = len(_rendered(lookup(path, namespaces)))
            except TemplateError:
                sizes[path] = 0
        total += sizes[path]
        if total > stop_after:
            break
    return total


def render(template: str, item: dict[str, Any], sample: dict[str, Any]) -> str:
    """The template with every ``{{ ... }}`` replaced by its value (``TemplateError`` past
    ``MAX_RENDERED_CHARS``)."""
    if rendered_length(template, item, sample) > MAX_RENDERED_CHARS:
        raise TemplateError(f"the template expands to more than {MAX_RENDERED_CHARS} "
                            "characters")
    namespaces = {"item": item, "sample": sample}

    def substitute(match: re.Match[str]) -> str:
        return _rendered(lookup(match.group(1), namespaces))

    return _VARIABLE.sub(substitute, template)


def check_template(template: str) -> None:
    """Refuse variables outside the two namespaces (at validation, before any sample)."""
    for match in _VARIABLE.finditer(template):
        path = match.group(1)
        steps = list(_STEP.finditer(path))
        if not steps or steps[0].group(1) not in NAMESPACES:
            raise TemplateError(f"template variable {{{{{path}}}}}: expected it to start with "
                                f"{' or '.join(NAMESPACES)}")

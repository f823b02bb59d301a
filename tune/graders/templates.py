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


def render(template: str, item: dict[str, Any], sample: dict[str, Any]) -> str:
    """The template with every ``{{ ... }}`` replaced by its value."""
    namespaces = {"item": item, "sample": sample}

    def substitute(match: re.Match[str]) -> str:
        value = lookup(match.group(1), namespaces)
        return value if isinstance(value, str) else json.dumps(value)

    return _VARIABLE.sub(substitute, template)


def check_template(template: str) -> None:
    """Refuse variables outside the two namespaces (at validation, before any sample)."""
    for match in _VARIABLE.finditer(template):
        path = match.group(1)
        steps = list(_STEP.finditer(path))
        if not steps or steps[0].group(1) not in NAMESPACES:
            raise TemplateError(f"template variable {{{{{path}}}}}: expected it to start with "
                                f"{' or '.join(NAMESPACES)}")

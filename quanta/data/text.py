"""Text a person could have written: what the registry stores and the API echoes back.

JSON can carry strings that are not text: a lone surrogate (``"\\udfff"``) parses, but
no UTF-8 encoder writes it back, so a value stored with one fails every later response
that echoes it; NUL truncates C strings (PostgreSQL refuses it outright); Unicode's
non-characters are reserved for a program's private use. Each is refused where it
enters, naming the field, before anything is stored.
"""

from __future__ import annotations

import re
from typing import Any

_NOT_TEXT = re.compile(
    "[\\x00\\ud800-\\udfff\\ufdd0-\\ufdef"
    + "".join(f"\\U{plane:04x}fffe\\U{plane:04x}ffff" for plane in range(17))
    + "]")


def text_problem(value: str) -> str | None:
    """Why ``value`` is not text (None when it is)."""
    match = _NOT_TEXT.search(value)
    if match is None:
        return None
    code = ord(match.group())
    if code == 0:
        kind = "a NUL character"
    elif 0xD800 <= code <= 0xDFFF:
        kind = "a lone surrogate"
    else:
        kind = "a Unicode non-character"
    return f"holds {kind} (U+{code:04X}) at position {match.start()}"


def find_not_text(value: Any, path: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """The first string (or object key) in a JSON value that is not text, as
    ``(dotted path, problem)``; None when every string is text."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                return ".".join(where), problem
        elif isinstance(node, dict):
            for key, child in reversed(list(node.items())):
                problem = text_problem(key) if isinstance(key, str) else None
                if problem:
                    return ".".join(where), f"has a key that {problem}"
                stack.append((child, (*where, str(key))))
        elif isinstance(node, list):
            stack.extend((child, (*where, str(i))) for i, child in reversed(
                list(enumerate(node))))
    return None


def as_text(value: str) -> str:
    """``value`` with every character that is not text written as its escape
    (``\\udfff``): for echoing what untrusted code produced (a grader's error message)."""
    return _NOT_TEXT.sub(lambda m: m.group().encode("unicode_escape",
                                                    "backslashreplace").decode("ascii"),
                         value)

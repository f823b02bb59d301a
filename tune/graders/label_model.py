"""``label_model``: a model Quanta serves reads the sample and answers one of the labels.

OpenAI's label grader asks its model for structured output; the small models Quanta
serves are asked in words instead: the prompt (``input`` messages, templated) gets one
system instruction listing the labels, and the reply is read as JSON ``{"label": ...}``,
else as the label it is, else as the first label it names (a whole word, any case). The
sample scores 1 (passes) when that label is one of ``passing_labels``, else 0; the label
read is the grade's ``details``. A refusal, a reply naming no label or a server error
scores 0 with OpenAI's flag for it. The server and key are the score_model grader's
(``QUANTA_GRADER_MODEL_URL``, ``QUANTA_GRADER_API_KEY``; an eval run passes its own).
"""

from __future__ import annotations

import json
import re
from typing import Any

from quanta.types import GraderType
from tune.graders import register_grader
from tune.graders.base import Grade
from tune.graders.config import LabelModelConfig
from tune.graders.score_model import ServedModelGrader
from tune.graders.templates import render

MAX_REPLY_TOKENS = 64


def read_label(text: str, labels: list[str]) -> str | None:
    """The label a reply gives: ``{"label": x}`` JSON or a JSON string, the whole reply,
    else the label named first in it (the longest, of labels starting at one place)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        parsed = parsed.get("label")
    if isinstance(parsed, str) and parsed.strip() in labels:
        return parsed.strip()
    folded = {label.casefold(): label for label in labels}
    whole = text.strip().strip(".\"'` ").casefold()
    if whole in folded:
        return folded[whole]
    found: list[tuple[int, int, str]] = []
    for label in labels:
        match = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, re.IGNORECASE)
        if match:
            found.append((match.start(), -len(label), label))
    return min(found)[2] if found else None


@register_grader(GraderType.LABEL_MODEL)
class LabelModelGrader(ServedModelGrader):
    config: LabelModelConfig

    def _request(self, item: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
        labels = ", ".join(json.dumps(label) for label in self.config.labels)
        instruction = (f"Classify the input with exactly one of these labels: {labels}. "
                       "Answer with the label only.")
        messages = [{"role": "system" if m.role == "developer" else m.role,
                     "content": render(m.text(), item, sample)} for m in self.config.input]
        if messages[0]["role"] == "system":  # one system message, first (chat templates)
            messages[0]["content"] = f"{messages[0]['content']}\n\n{instruction}"
        else:
            messages.insert(0, {"role": "system", "content": instruction})
        return {"model": self.config.model, "messages": messages, "temperature": 0.0,
                "max_tokens": MAX_REPLY_TOKENS}

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        asked = self._ask(item, sample)
        if isinstance(asked, Grade):
            return asked
        reply, message, tokens = asked
        content = message.get("content") or ""
        label = None if message.get("refusal") else read_label(content, self.config.labels)
        if message.get("refusal"):
            grade = Grade.failed("model_grader_refusal_error", str(message["refusal"])[:300])
        elif label is None:
            grade = Grade.failed("model_grader_parse_error",
                                 f"no label of {self.config.labels} in {content[:200]!r}")
        else:
            grade = Grade(score=1.0 if label in self.config.passing_labels else 0.0,
                          details={"label": label})
        grade.token_usage, grade.sampled_model_name = tokens, reply.get("model")
        return grade

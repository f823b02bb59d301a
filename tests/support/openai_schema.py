"""Validate API responses against schemas cut from OpenAI's published OpenAPI description
(``tests/contract/openai-*.json``, written by ``tests/contract/extract_openai_schemas.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACT_DIR = Path(__file__).resolve().parents[1] / "contract"


class OpenAISchemas:
    """One extracted document: ``conforms(body, "FineTuningJob")``."""

    def __init__(self, name: str, directory: Path = CONTRACT_DIR) -> None:
        self.schemas: dict[str, Any] = json.loads((directory / name).read_text())["schemas"]

    def problems(self, body: Any, schema: str) -> list[str]:
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator({"$ref": f"#/components/schemas/{schema}",
                                          "components": {"schemas": self.schemas}})
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(body)]

    def conforms(self, body: Any, schema: str) -> Any:
        """``body``, after asserting it validates against OpenAI's ``schema``."""
        problems = self.problems(body, schema)
        assert not problems, f"{schema}: {problems}"
        return body

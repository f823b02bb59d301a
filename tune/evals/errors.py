"""The one error of an eval request that cannot be run: its message and the field it is
about (``param``, as OpenAI's error bodies name it: ``testing_criteria[0].type``,
``data_source.source.id``). The API answers it as a 400; the worker never sees one,
because every run was checked when it was created."""

from __future__ import annotations


class EvalRequestError(ValueError):
    def __init__(self, message: str, param: str | None = None,
                 code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

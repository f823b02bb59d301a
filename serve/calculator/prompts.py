"""Chat messages to the raw prompt the engine would build, for calculator decoding.

Calculator decoding continues a partly written answer, which both engines can do on
their completions route only; so chat requests are rendered here with the base model's
own chat template (the tokenizer files in the registry, the same template vLLM and the
GGUF export carry), and the tokenizer counts tokens for engines whose streams report no
usage (llama-cpp-python).
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import Any


class ChatPrompts:
    """The base model's tokenizer, loaded on first use (a few hundred ms)."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self._lock = threading.Lock()

    @cached_property
    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        with self._lock:
            return AutoTokenizer.from_pretrained(str(self.model_dir))

    def render(self, messages: list[dict[str, Any]]) -> str:
        """The prompt for the assistant's next message (generation prompt added), less a
        leading BOS the template writes (Gemma's) where the completions route adds one."""
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                    add_generation_prompt=True)
        bos = self.tokenizer.bos_token
        if bos and prompt.startswith(bos) and self._adds_bos:
            prompt = prompt[len(bos):]
        return prompt

    @cached_property
    def _adds_bos(self) -> bool:
        ids = self.tokenizer("x")["input_ids"]
        return bool(ids) and ids[0] == self.tokenizer.bos_token_id

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

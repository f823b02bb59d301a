"""llama.cpp as calculator decoding's completion source: one answering path for the GGUF
exports, whether a person chats with one (``quanta chat``) or the export check measures
its accuracy (``quantize.accuracy``), the same loop ``quanta serve`` runs
(``quanta.calculator.calculator_decode``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from quanta.calculator import CompletionSource, Delta


def llama_source(llm: Any, *, temperature: float = 0.0, seed: int = 0) -> CompletionSource:
    """One streamed raw-prompt completion per segment; greedy at temperature 0. llama-cpp-
    python streams a token per chunk and reports no usage there, so tokens are counted."""

    async def complete(prompt: str, max_tokens: int | None,
                       stop: Sequence[str]) -> AsyncIterator[Delta]:
        finish, tokens = None, 0
        for chunk in llm.create_completion(prompt, max_tokens=max_tokens or 0,
                                           stop=list(stop), temperature=temperature,
                                           top_k=1 if temperature == 0 else 40, seed=seed,
                                           stream=True):
            choice = chunk["choices"][0]
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            else:
                tokens += 1
            if choice.get("text"):
                yield Delta(text=choice["text"])
        yield Delta(finish_reason=finish or "stop", completion_tokens=tokens)

    return complete


def chat_prompt(llm: Any, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
    """The raw prompt for the assistant's next message, rendered with the chat template the
    GGUF carries (as ``create_chat_completion`` renders it), and that template's stops."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = (llm.metadata or {}).get("tokenizer.chat_template")
    if not template:
        raise ValueError("the GGUF carries no chat template")

    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", "replace")

    formatter = Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()),
                                    bos_token=text(llm.token_bos()),
                                    add_generation_prompt=True)
    response = formatter(messages=messages)
    stops = response.stop if isinstance(response.stop, list) else [response.stop or ""]
    return without_template_bos(llm, response.prompt), [s for s in stops if s]


def without_template_bos(llm: Any, prompt: str) -> str:
    """``prompt`` less the BOS a chat template writes itself (Gemma's) where llama.cpp's
    completion adds one already: two BOS tokens throw such a model off."""
    bos_id = llm.token_bos()
    bos = llm.detokenize([bos_id], special=True).decode("utf-8", "replace")
    if bos and prompt.startswith(bos) and llm.tokenize(b"x", add_bos=True)[:1] == [bos_id]:
        return prompt[len(bos):]
    return prompt

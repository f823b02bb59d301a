"""``quanta chat`` on a GGUF export answers through calculator decoding for an adapter
trained with traces: the value after ``>>`` is computed, not the model's guess (as
``quanta serve`` and the export check fill it in)."""

from __future__ import annotations

from typing import Any

from quantize.chat import stream_chat

CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QUESTION = ("An object with initial velocity 18 m/s has a constant acceleration of 3.7 m/s^2. "
            "What is its velocity 8 s later?")


class ScriptedLlama:
    """Stands in for llama_cpp.Llama: the model's own (wrong) arithmetic, token by token,
    stopping where the stop strings say, as llama.cpp does."""

    metadata = {"tokenizer.chat_template": CHATML}
    answer = "v = u + a*t = <<18 + 3.7*8>>22.5 m/s"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def token_bos(self) -> int:
        return 1

    def token_eos(self) -> int:
        return 2

    def detokenize(self, tokens: list[int], special: bool = False) -> bytes:
        return {1: b"<|im_start|>", 2: b"<|im_end|>"}[tokens[0]]

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return [9]  # as SmolLM2's GGUF: no BOS added

    def create_completion(self, prompt: str, *, stop: list[str], stream: bool,
                          **_: Any) -> Any:
        assert stream
        self.prompts.append(prompt)
        written = prompt.split("<|im_start|>assistant\n", 1)[1]
        rest = self.answer[len(written):] if self.answer.startswith(written) else ""
        cut = min((rest.find(s) for s in stop if s in rest), default=-1)
        text = rest if cut < 0 else rest[:cut]
        for index in range(0, len(text), 3):
            yield {"choices": [{"text": text[index:index + 3], "finish_reason": None}]}
        yield {"choices": [{"text": "", "finish_reason": "stop" if cut >= 0 else "length"}]}

    def create_chat_completion(self, **_: Any) -> Any:
        for piece in ("v = <<18 + 3.7*8>>", "22.5 m/s"):
            yield {"choices": [{"delta": {"content": piece}}]}


def test_a_calculator_adapter_gets_the_computed_value() -> None:
    llm = ScriptedLlama()
    reply = "".join(stream_chat(llm, [{"role": "user", "content": QUESTION}],
                                calculator=True))
    assert reply.startswith("v = u + a*t = <<18 + 3.7*8>>47.6")
    assert "22.5" not in reply.split(">>", 1)[1].split()[0]
    assert len(llm.prompts) == 2  # one segment up to >>, one after the inserted value
    assert llm.prompts[0].endswith("<|im_start|>assistant\n")
    assert llm.prompts[1].endswith(">>47.6")


def test_an_adapter_without_traces_is_answered_as_before() -> None:
    reply = "".join(stream_chat(ScriptedLlama(), [{"role": "user", "content": QUESTION}]))
    assert reply == "v = <<18 + 3.7*8>>22.5 m/s"


class BosLlama:
    """A model whose tokenizer adds BOS itself (Gemma's GGUF)."""

    def token_bos(self) -> int:
        return 2

    def detokenize(self, tokens: list[int], special: bool = False) -> bytes:
        return b"<bos>"

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return [2, 9] if add_bos else [9]


def test_a_template_bos_is_not_doubled() -> None:
    from quantize.llama_source import without_template_bos

    assert without_template_bos(BosLlama(), "<bos><start_of_turn>user") == "<start_of_turn>user"
    assert without_template_bos(BosLlama(), "<start_of_turn>user") == "<start_of_turn>user"
    assert without_template_bos(ScriptedLlama(), "<|im_start|>user") == "<|im_start|>user"

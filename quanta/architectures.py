"""What Quanta needs to know per model architecture, and nowhere else.

Training, export and serving code asks this table (keyed by the Hugging Face
``model_type``) for module names and template tokens rather than naming them itself. A
family registers itself with ``register``; an architecture the table does not know still
works where its weights say enough (LoRA targets are read off the first decoder layer's
matrices) and gets ChatML when its base ships no chat template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Architecture", "ChatFormat", "architecture_for", "chat_format_named", "chat_format_of",
           "lora_targets", "register"]


@dataclass(frozen=True, slots=True)
class ChatFormat:
    """One way of writing a conversation as text.

    ``jinja`` is the Hugging Face chat template a base without one is given at import
    (recorded, so training and both engines render prompts alike); ``end_of_turn`` ends an
    assistant turn (a stop for engines and a label the trainer teaches); ``ollama`` is the
    same format as an Ollama Modelfile TEMPLATE (Go template syntax); ``marker`` is text
    only this format's templates contain, to recognise a template a base ships.
    """

    name: str
    jinja: str
    end_of_turn: str
    ollama: str
    marker: str

    @property
    def stops(self) -> tuple[str, ...]:
        """Stop strings for engines that render the format themselves (llama.cpp)."""
        return (self.end_of_turn, self.marker)


CHATML = ChatFormat(
    name="chatml",
    jinja=("{% for message in messages %}"
           "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
           "{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"),
    end_of_turn="<|im_end|>",
    # Ollama keeps the system message in .Messages too: one pass writes every turn once.
    ollama=("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
            "<|im_start|>assistant\n"),
    marker="<|im_start|>",
)

# Gemma's turn format: roles user and model, a system message folded into the first user
# turn (Gemma has no system role), the beginning-of-sequence token written by the template.
GEMMA = ChatFormat(
    name="gemma",
    jinja=("{{ bos_token }}"
           "{% set system = messages[0]['content'] + '\n\n' "
           "if messages and messages[0]['role'] == 'system' else '' %}"
           "{% for message in messages if message['role'] != 'system' %}"
           "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
           "{{ '<start_of_turn>' + role + '\n' }}"
           "{% if loop.first and role == 'user' %}{{ system }}{% endif %}"
           "{{ message['content'] | trim + '<end_of_turn>\n' }}"
           "{% endfor %}"
           "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"),
    end_of_turn="<end_of_turn>",
    ollama=("{{- $first := true }}{{- range .Messages }}"
            "{{- if eq .Role \"user\" }}<start_of_turn>user\n"
            "{{ if and $first $.System }}{{ $.System }}\n\n{{ end }}"
            "{{ .Content }}<end_of_turn>\n{{ $first = false }}"
            "{{- else if eq .Role \"assistant\" }}<start_of_turn>model\n"
            "{{ .Content }}<end_of_turn>\n{{ end }}{{ end }}<start_of_turn>model\n"),
    marker="<start_of_turn>",
)

CHAT_FORMATS = (CHATML, GEMMA)


@dataclass(frozen=True, slots=True)
class Architecture:
    """A family of models that share module names and a chat format."""

    name: str
    model_types: tuple[str, ...]
    lora_targets: tuple[str, ...]
    chat_format: ChatFormat


_TABLE: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    """File ``architecture`` under each of its ``model_types``."""
    for model_type in architecture.model_types:
        known = _TABLE.get(model_type)
        if known is not None and known != architecture:
            raise ValueError(f"model_type {model_type!r} is already {known.name}")
        _TABLE[model_type] = architecture
    return architecture


_ATTENTION_MLP = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
register(Architecture("llama", ("llama", "mistral", "qwen2", "qwen3"), _ATTENTION_MLP, CHATML))
register(Architecture("gemma", ("gemma", "gemma2", "gemma3", "gemma3_text"), _ATTENTION_MLP,
                      GEMMA))
register(Architecture("phi3", ("phi3",), ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
                      CHATML))


def architecture_for(model_type: str | None) -> Architecture | None:
    """The registered family of ``model_type`` (None: not in the table)."""
    return _TABLE.get(model_type or "")


_FIRST_LAYER = re.compile(r"(?:^|\.)layers\.0\.(?:.+\.)?([A-Za-z_][A-Za-z0-9_]*)\.weight$")


def lora_targets(model_type: str | None, weights: Mapping[str, Sequence[int]]) -> list[str]:
    """The modules LoRA trains for this architecture: the table's, or else every matrix
    of the first decoder layer (``weights``: tensor name -> shape)."""
    known = architecture_for(model_type)
    if known is not None:
        return list(known.lora_targets)
    found: list[str] = []
    for name, shape in weights.items():
        match = _FIRST_LAYER.search(name)
        if match and len(shape) == 2 and match.group(1) not in found:
            found.append(match.group(1))
    return found


def chat_format_named(name: str | None) -> ChatFormat | None:
    """The format recorded on a base by name (None: its own template, of no known format)."""
    return next((fmt for fmt in CHAT_FORMATS if fmt.name == name), None)


def chat_format_of(template: str | None, model_type: str | None = None
                   ) -> ChatFormat | None:
    """The format a chat template writes, recognised by its markers; for no template, the
    architecture's own (ChatML outside the table). None: a template of another format
    (Llama 3's, Mistral's), which engines render from the model's files as it is."""
    if template:
        return next((fmt for fmt in CHAT_FORMATS if fmt.marker in template), None)
    known = architecture_for(model_type)
    return known.chat_format if known is not None else CHATML

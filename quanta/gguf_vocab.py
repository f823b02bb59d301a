"""A SentencePiece ``tokenizer.model`` rebuilt from a GGUF's own vocabulary.

A GGUF with a SentencePiece vocabulary (``tokenizer.ggml.model == "llama"``: Gemma, Llama 2,
Mistral) keeps pieces, scores and types, but transformers' GGUF loader writes only a
``tokenizer.json``. llama.cpp's converter turns a directory without ``tokenizer.model``
into a GPT-2 style vocabulary whose pre-tokenizer it guesses from a hash, which
tokenizes such a model wrongly; with the rebuilt model file it writes the same
SentencePiece vocabulary the GGUF came with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPM_FILE = "tokenizer.model"
_BPE = 2  # sentencepiece TrainerSpec.ModelType.BPE


def gguf_fields(gguf_file: Path) -> dict[str, Any]:
    """A GGUF's metadata fields (a 262k vocabulary takes ~15 s to parse: read them once
    and pass them on)."""
    from gguf import GGUFReader

    return dict(GGUFReader(gguf_file).fields)


def _field(fields: dict[str, Any], key: str, default: Any = None) -> Any:
    return fields[key].contents() if key in fields else default


def _array(fields: dict[str, Any], key: str, decode: bool = False) -> list[Any] | None:
    """An array field's items (read off the field's parts: ``contents()`` takes ~20 s for
    a 262k vocabulary)."""
    if key not in fields:
        return None
    field = fields[key]
    items = [field.parts[i] for i in field.data]
    if decode:
        return [bytes(item).decode("utf-8") for item in items]
    return [item.item() if item.size == 1 else item.tolist() for item in items]


def write_sentencepiece(fields: dict[str, Any], out_dir: Path) -> Path | None:
    """Write ``tokenizer.model`` for a GGUF (its ``fields``) with a SentencePiece
    vocabulary; None for other vocabularies."""
    if _field(fields, "tokenizer.ggml.model") != "llama":
        return None
    from sentencepiece import sentencepiece_model_pb2 as spm
    tokens = _array(fields, "tokenizer.ggml.tokens", decode=True) or []
    scores = _array(fields, "tokenizer.ggml.scores") or [0.0] * len(tokens)
    types = _array(fields, "tokenizer.ggml.token_type") or [1] * len(tokens)
    model = spm.ModelProto()
    for piece, score, kind in zip(tokens, scores, types, strict=True):
        # GGUF's token types number as SentencePiece's piece types do (1 normal ... 6 byte).
        model.pieces.add(piece=piece, score=float(score), type=int(kind))
    trainer = model.trainer_spec
    trainer.model_type = _BPE
    trainer.byte_fallback = any(int(kind) == 6 for kind in types)
    trainer.vocab_size = len(tokens)
    for name, key in (("unk_id", "unknown"), ("bos_id", "bos"), ("eos_id", "eos"),
                      ("pad_id", "padding")):
        setattr(trainer, name, int(_field(fields, f"tokenizer.ggml.{key}_token_id", -1)))
    normalizer = model.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = bool(_field(fields, "tokenizer.ggml.add_space_prefix", True))
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    path = out_dir / SPM_FILE
    path.write_bytes(model.SerializeToString())
    return path

"""Typed export errors. They subclass ValueError so the CLI reports them and exits 2."""

from __future__ import annotations


class ExportError(ValueError):
    """An export could not be made; nothing was registered."""


class UnsupportedFormatError(ExportError):
    """The format name is not one Quanta exports."""


class ExportInputError(ExportError):
    """An input (adapter, base model, GGUF) is missing, unreadable or corrupt."""


class CorruptGGUFError(ExportInputError):
    """A file that should be a GGUF model is not one llama.cpp can read."""


class QualityError(ExportError):
    """The export's measured quality is unusable (e.g. a non-finite perplexity)."""


class ToolMissingError(ExportError):
    """An external tool (llama.cpp converters, the GPTQ environment) is not available."""


class ConversionError(ExportError):
    """A converter or quantizer ran and failed."""

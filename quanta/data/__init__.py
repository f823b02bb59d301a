"""Dataset formats, validation and reading: the generic part of Quanta's data layer.

Everything here reads or writes OpenAI chat format (``{"messages": [...]}``); other
formats (camel-ai physics, Alpaca, OpenAI preference) are normalised to it. Domain
knowledge (problem generators, answer checkers, shipped datasets) lives in domain
packages outside the core (``quanta_physics``), found by name through ``quanta.domains``.
"""

from quanta.data.errors import DatasetError
from quanta.data.formats import FORMATS, detect_format
from quanta.data.jsonl import to_jsonl, write_jsonl
from quanta.data.stats import dataset_stats
from quanta.data.validate import (
    ValidationReport,
    read_examples,
    validate_bytes,
    validate_file,
    validate_upload,
)

__all__ = [
    "FORMATS",
    "DatasetError",
    "ValidationReport",
    "dataset_stats",
    "detect_format",
    "read_examples",
    "to_jsonl",
    "validate_bytes",
    "validate_file",
    "validate_upload",
    "write_jsonl",
]

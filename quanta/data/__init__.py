"""Dataset formats, validation, the bundled physics set and the verifiable problem generator.

Everything here reads or writes OpenAI chat format (``{"messages": [...]}``);
other formats (camel-ai physics, Alpaca, OpenAI preference) are normalised to it.
"""

from quanta.data.answers import check_answer, extract_final_answer
from quanta.data.bundled import (
    bundled_physics_path,
    held_out_chat_examples,
    held_out_chat_path,
    write_jsonl,
)
from quanta.data.errors import DatasetError
from quanta.data.formats import FORMATS, detect_format
from quanta.data.physics import (
    SYSTEM_PROMPT,
    TOPICS,
    PhysicsProblem,
    generate_problems,
    held_out_problems,
    problem_to_chat,
)
from quanta.data.stats import dataset_stats
from quanta.data.units import normalise_unit
from quanta.data.validate import (
    ValidationReport,
    read_examples,
    validate_bytes,
    validate_file,
    validate_upload,
)

__all__ = [
    "FORMATS",
    "SYSTEM_PROMPT",
    "TOPICS",
    "DatasetError",
    "PhysicsProblem",
    "ValidationReport",
    "bundled_physics_path",
    "check_answer",
    "dataset_stats",
    "detect_format",
    "extract_final_answer",
    "generate_problems",
    "held_out_chat_examples",
    "held_out_chat_path",
    "held_out_problems",
    "normalise_unit",
    "problem_to_chat",
    "read_examples",
    "validate_bytes",
    "validate_file",
    "validate_upload",
    "write_jsonl",
]

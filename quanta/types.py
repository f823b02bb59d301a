"""Names shared across services, as types: formats, statuses, levels, methods, dtypes.

Each value is spelled once, here; the registry, tune, quantize, serve and the demo
import these enums instead of repeating string literals. They are ``StrEnum``s, so a
member compares equal to its string and is stored in the database and in JSON as
that string: rows written before these types existed read back unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class ComputeDtype(StrEnum):
    """The dtype matmuls run in (storage stays what the registry holds: bf16 safetensors).

    ``AUTO`` asks ``quanta.precision`` to choose for the device at hand.
    """

    AUTO = "auto"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"
    FLOAT32 = "float32"

"""Checkpoint models, as OpenAI has them: ``<fine-tuned model>:ckpt-step-N``.

When a job succeeds, its last ``KEEP`` checkpoints (OpenAI keeps the last three) become
adapters of their own, named after the job's model with ``:ckpt-step-N``: servable by
``quanta serve`` and usable as the ``model`` of a new job, like any fine-tuned model.
Each holds only the adapter's files (the optimizer state stays behind); the job's older
checkpoints are deleted, and ``checkpoint`` in the adapter's config says where it came
from (``Registry.list_adapters`` leaves them out unless asked). Publishing is idempotent,
so an attempt that died half-way is finished by the next one.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from quanta.registry import AdapterRecord, CheckpointRecord, JobRecord, NotFoundError, Registry
from quanta.types import ArtifactKind
from tune.plan import checkpoint_name

KEEP = 3
# What a checkpoint model takes of a Trainer checkpoint directory: peft's adapter files.
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
ADAPTER_FILES = (ADAPTER_CONFIG, *ADAPTER_WEIGHTS)


def checkpoint_config(config: dict[str, Any], of: AdapterRecord, step: int) -> dict[str, Any]:
    return {**config, "steps": step, "checkpoint": {"of": of.name, "step": step}}


def publish_checkpoints(registry: Registry, job: JobRecord, adapter: AdapterRecord) -> list[str]:
    """Register the job's last ``KEEP`` checkpoints as adapters, delete the rest; returns
    the checkpoint models' names, newest first."""
    checkpoints = registry.jobs.checkpoints(job.id)  # newest first
    names = []
    for checkpoint in checkpoints[:KEEP]:
        name = checkpoint_name(adapter.name, checkpoint.step)
        if registry.find_adapter(name) is None and not _publish(registry, job, adapter,
                                                                 checkpoint, name):
            continue  # not a peft checkpoint: nothing to serve
        names.append(name)
    for checkpoint in checkpoints[KEEP:]:
        with contextlib.suppress(NotFoundError):  # another attempt got there first
            registry.delete(ArtifactKind.CHECKPOINT, checkpoint.id)
    return names


def _publish(registry: Registry, job: JobRecord, adapter: AdapterRecord,
             checkpoint: CheckpointRecord, name: str) -> bool:
    source = registry.materialize(checkpoint.sha256)
    if not (source / ADAPTER_CONFIG).is_file() or not any(
            (source / weights).is_file() for weights in ADAPTER_WEIGHTS):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        for filename in ADAPTER_FILES:
            if (source / filename).is_file():
                shutil.copy(source / filename, Path(tmp) / filename)
        registry.add_adapter(
            job.tenant_id, adapter.base_model_id, Path(tmp), suffix=job.suffix,
            job_id=job.id, training_file_id=job.training_file_id,
            config=checkpoint_config(adapter.config, adapter, checkpoint.step),
            adapter_id=f"{adapter.id}-s{checkpoint.step}", name=name)
    return True

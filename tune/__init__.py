"""Quanta's tuning service: OpenAI-compatible files and fine-tuning jobs, a queue worker,
a LoRA/QLoRA trainer (SFT and DPO) and before/after evaluation.

Only ``tune.cli`` is loaded by ``quanta.cli`` (entry point ``quanta.commands``); everything
else is imported lazily so the CLI starts fast and the API process never loads torch unless
it trains.
"""

"""Quanta's tuning service: OpenAI-compatible files and fine-tuning jobs, a queue worker,
a LoRA/QLoRA trainer (SFT, DPO, RFT) and before/after evaluation.

Split by process: ``tune.api`` is the HTTP API (routes, one service per resource, OpenAI's
shapes), ``tune.train`` the worker (queue, trainer, methods, distributed, tracking,
evaluation). Neither imports the other; they meet in the registry and in what both import
from here: the typed training plan (``plan``), the integrations' schema
(``integrations``) and the graders (``graders``). ``cli`` mounts both sides' commands.

Only ``tune.cli`` is loaded by ``quanta.cli`` (entry point ``quanta.commands``); everything
else is imported lazily so the CLI starts fast and the API process never loads torch.
"""

"""serve: inference over the registry's models and adapters.

vLLM (or llama.cpp for laptops) does the serving; Quanta adds what a multi-tenant
deployment needs around it: a registry LoRA resolver (``lora_resolver``), API-key and
ownership checks (``middleware``), ``quanta_*`` Prometheus metrics (``metrics``) and a
gRPC surface over the same engine (``grpc_server``).
"""

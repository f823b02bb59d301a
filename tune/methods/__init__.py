"""Training methods behind one signature: ``build_trainer(model, tokenizer, data, args, ...)``.

``sft`` (supervised, assistant-only loss) and ``dpo`` (preference pairs), like peft's one
module per backend behind one interface.
"""

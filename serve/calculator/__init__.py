"""Calculator decoding in serve: the server evaluates the calculations an adapter writes.
``quanta.calculator`` has the syntax, the evaluator and the engine-independent loop;
``http`` serves the OpenAI routes over either engine's app, ``prompts`` renders chats;
gRPC drives the same loop over vLLM's serving objects."""

from quanta.calculator import (
    CompletionSource,
    Delta,
    EngineError,
    calculator_decode,
    completion_deltas,
)
from serve.calculator.http import CalculatorRoute, extension_choice, wants_calculator
from serve.calculator.prompts import ChatPrompts

__all__ = ["CalculatorRoute", "ChatPrompts", "CompletionSource", "Delta", "EngineError",
           "calculator_decode", "completion_deltas", "extension_choice", "wants_calculator"]

"""OpenAI's Responses API on serve: Responses stored per tenant, bounded, in-process
(``store``), and the routes and request handling around the engine's own
``POST /v1/responses`` (``routes``). Calculator decoding answers Responses through the
chat route (``serve.calculator.responses``)."""

from serve.responses.routes import (
    RESPONSES_PATH,
    RESPONSES_PREFIX,
    TERMINAL_EVENTS,
    HTTPMethodNotAllowed,
    ResponsesCall,
    StoredResponses,
    error_event,
    not_found,
)
from serve.responses.store import ResponseStore, StoredResponse, input_items

__all__ = ["RESPONSES_PATH", "RESPONSES_PREFIX", "TERMINAL_EVENTS", "HTTPMethodNotAllowed",
           "ResponseStore", "ResponsesCall", "StoredResponse", "StoredResponses", "error_event",
           "input_items", "not_found"]

"""OpenAI's Responses API around the engine's ``POST /v1/responses``: the stored
Responses' routes, and what a new Response's request and answer pass through.

The engine (vLLM's Responses route, or calculator decoding) generates; this layer owns
everything that is stored (``serve.responses.store``), so that it belongs to its tenant:

* ``GET /v1/responses/{id}``, ``DELETE /v1/responses/{id}``,
  ``GET /v1/responses/{id}/input_items`` and ``POST /v1/responses/{id}/cancel`` are
  answered here from the store, for the caller's own Responses only: another tenant's id
  gets the very 404 an id that never existed gets;
* ``previous_response_id`` is resolved here, with the same 404 for an id the caller does
  not have, and the conversation it names becomes the new request's leading input items
  (the engine never sees the id: it stores nothing);
* ``background`` is refused: a background Response would go on generating after its
  request (and so its place in the tenant's limits) has ended. With none, there is
  nothing to cancel: cancelling one's own Response is a 400, as OpenAI answers for a
  Response that was not created in the background;
* ``request_id`` (vLLM's own field, not OpenAI's) is refused: vLLM makes it the
  Response's id, and ids must stay the engine's random ones, so that no client can choose
  (or guess) the id of a Response it stores;
* routes OpenAI has and this server does not (``POST /v1/responses/input_tokens``,
  ``POST /v1/responses/compact``) are a 404, a method a route does not take a 405 with
  ``Allow``, both in OpenAI's error body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from serve.asgi import Scope, Send, send_json
from serve.errors import HTTPBadRequest, HTTPError, HTTPNotFound
from serve.responses.store import ResponseStore, input_items

RESPONSES_PATH = "/v1/responses"
RESPONSES_PREFIX = RESPONSES_PATH + "/"
# OpenAI's routes under /v1/responses/ that this server does not offer.
NOT_OFFERED = frozenset({"input_tokens", "compact"})
MAX_ITEMS_PAGE = 100
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class HTTPMethodNotAllowed(HTTPError, status=405, code="method_not_allowed"):
    """A route this server has, called with a method it does not take."""

    def __init__(self, method: str, path: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{method} is not allowed on {path}; use {', '.join(allowed)}")
        self.allowed = allowed

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"allow", ", ".join(self.allowed).encode())]


def not_found(response_id: str, param: str = "response_id") -> HTTPNotFound:
    """The one answer for a Response the caller does not have (never existed, dropped,
    deleted, or another tenant's): vLLM's own wording for an unknown id."""
    return HTTPNotFound(f"Response with id '{response_id}' not found.", param=param)


@dataclass
class ResponsesCall:
    """One ``POST /v1/responses`` on its way through: what to store when it completes."""

    store: ResponseStore
    tenant: str
    keep: bool
    input_items: list[dict[str, Any]] = field(default_factory=list)
    previous_response_id: str | None = None
    stored: bool = False

    def shape(self, response: dict[str, Any]) -> dict[str, Any]:
        """The Response as the client sees it: its ``previous_response_id`` is the one the
        client sent (the engine was given the conversation instead)."""
        if self.previous_response_id is not None:
            response["previous_response_id"] = self.previous_response_id
        return response

    def finish(self, response: dict[str, Any]) -> None:
        """The final Response (whole, or a stream's last event's): stored unless the client
        sent ``store: false``."""
        if self.keep and not self.stored:
            self.stored = self.store.put(self.tenant, response, self.input_items,
                                         self.previous_response_id)

    def event(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One stream event as the client sees it; the last one's Response is stored."""
        response = payload.get("response")
        if isinstance(response, dict):
            self.shape(response)
            if payload.get("type") in TERMINAL_EVENTS:
                self.finish(response)
        return payload


class StoredResponses:
    """The Responses routes Quanta's layer answers, over one store."""

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    def prepare(self, tenant: str, body: dict[str, Any]) -> ResponsesCall:
        """Check a ``POST /v1/responses`` body and resolve its ``previous_response_id`` into
        leading input items (the body is changed in place). Raises the HTTP error."""
        if body.get("background"):
            raise HTTPBadRequest("background Responses are not supported by this server: "
                                 "send the request without 'background' (streamed, if "
                                 "you want the output as it is generated)",
                                 param="background")
        if body.pop("request_id", None) is not None:
            raise HTTPBadRequest("Unrecognized request argument supplied: request_id (a "
                                 "Response's id is chosen by the server)", param="request_id")
        call = ResponsesCall(self.store, tenant, keep=body.get("store") is not False,
                             input_items=input_items(body.get("input")))
        previous = body.pop("previous_response_id", None)
        if previous is None:
            return call
        if not isinstance(previous, str):
            raise HTTPBadRequest("'previous_response_id' must be a string",
                                 param="previous_response_id")
        history = self.store.history(tenant, previous)
        if history is None:
            raise not_found(previous, param="previous_response_id")
        current = body.get("input")
        if isinstance(current, str):
            current = [{"type": "message", "role": "user", "content": current}]
        if isinstance(current, list):  # anything else: the engine refuses it
            body["input"] = history + current
        call.previous_response_id = previous
        return call

    async def serve(self, tenant: str, scope: Scope, send: Send) -> int:
        """Answer one request under ``/v1/responses/``; returns its status."""
        method, path = scope["method"], scope["path"]
        parts = path.removeprefix(RESPONSES_PREFIX).split("/")
        response_id = parts[0]
        if len(parts) == 1 and response_id in NOT_OFFERED:
            raise HTTPNotFound(f"{path} is not offered by this server")
        if len(parts) == 1 and response_id:
            allowed: tuple[str, ...] = ("GET", "DELETE")
            action = {"GET": self._retrieve, "DELETE": self._delete}.get(method)
        elif len(parts) == 2 and response_id and parts[1] == "input_items":
            allowed, action = ("GET",), self._input_items if method == "GET" else None
        elif len(parts) == 2 and response_id and parts[1] == "cancel":
            allowed, action = ("POST",), self._cancel if method == "POST" else None
        else:
            raise HTTPNotFound(f"{path} is not a route of this server")
        if action is None:
            raise HTTPMethodNotAllowed(method, path, allowed)
        try:
            raw_query = scope.get("query_string", b"").decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPBadRequest("the query string is not UTF-8") from None
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        body = action(tenant, response_id, query)
        await send_json(send, 200, body)
        return 200

    def _entry(self, tenant: str, response_id: str) -> Any:
        entry = self.store.get(tenant, response_id)
        if entry is None:
            raise not_found(response_id)
        return entry

    def _retrieve(self, tenant: str, response_id: str, query: dict[str, str]) -> Any:
        if query.get("stream", "false").lower() not in ("false", "0"):
            # OpenAI streams a background Response's events; this server runs none.
            raise HTTPBadRequest("streaming a stored Response is for background Responses, "
                                 "which this server does not run", param="stream")
        return self._entry(tenant, response_id).response

    def _delete(self, tenant: str, response_id: str, query: dict[str, str]) -> Any:
        if not self.store.delete(tenant, response_id):
            raise not_found(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    def _cancel(self, tenant: str, response_id: str, query: dict[str, str]) -> Any:
        self._entry(tenant, response_id)
        raise HTTPBadRequest("Cannot cancel a synchronous response: only background "
                             "Responses can be cancelled", param="response_id")

    def _input_items(self, tenant: str, response_id: str, query: dict[str, str]) -> Any:
        """OpenAI's ``ResponseItemList``: newest first unless ``order=asc``; ``limit``
        (1-100, default 20) after the item ``after``."""
        items = list(self._entry(tenant, response_id).input_items)
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise HTTPBadRequest("'order' must be 'asc' or 'desc'", param="order")
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_ITEMS_PAGE:
            raise HTTPBadRequest(f"'limit' must be an integer between 1 and {MAX_ITEMS_PAGE}",
                                 param="limit")
        if order == "desc":
            items.reverse()
        after = query.get("after")
        if after is not None:
            ids = [item.get("id") for item in items]
            if after not in ids:
                raise HTTPBadRequest(f"No input item '{after}' in this Response", param="after")
            items = items[ids.index(after) + 1:]
        page = items[:limit]
        return {"object": "list", "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit}


def error_event(payload: dict[str, Any], sequence_number: int) -> dict[str, Any]:
    """An engine's error in the middle of a Responses stream (``{"error": {...}}``) as
    OpenAI's ``error`` stream event."""
    error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
    code = error.get("code")
    return {"type": "error", "code": code if isinstance(code, str) else "server_error",
            "message": str(error.get("message") or json.dumps(payload)),
            "param": error.get("param") if isinstance(error.get("param"), str) else None,
            "sequence_number": sequence_number}

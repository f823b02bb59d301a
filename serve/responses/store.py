"""Stored Responses: which tenant made each, what it was asked and answered, bounded.

OpenAI stores a Response (``store``, true by default) so that its creator can retrieve
it, delete it, list its input items and continue the conversation with
``previous_response_id``. vLLM 0.32 can keep Responses too (``VLLM_ENABLE_RESPONSES_API_STORE``),
but in dictionaries it never empties, without owners, and only for what its own route
generated (not calculator decoding's answers). Quanta keeps them here instead, and vLLM's
store stays off (``serve.engines.vllm``):

* **in-process memory**: the store lives in the API-server process, as vLLM's would; a
  restart empties it, and each replica has its own (a client that retrieves a Response
  must reach the server that made it, as with vLLM). Nothing is written to the registry;
* **bounded per tenant**: each tenant keeps at most ``max_responses`` Responses and
  ``max_bytes`` of their JSON (Response and input items); beyond either, that tenant's
  own oldest are dropped first, so one tenant's traffic never pushes out another's. All
  tenants together keep at most ``max_total_bytes``; beyond it, the oldest Responses of
  the tenant holding the most are dropped (a tenant loses Responses to the total only
  while it holds at least as much as any other). A dropped Response is gone as if
  deleted: retrieving it is a 404, and a conversation continued from a later one begins
  at the oldest Response still stored;
* **per tenant**: each entry names its tenant, and every lookup takes the caller's. Another
  tenant's id answers exactly as an id that never existed.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quanta.config import Settings

MIB = 1024 * 1024


@dataclass(frozen=True)
class StoredResponse:
    """One Response as its creator received it, and the input items it was asked with."""

    tenant: str
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    previous_response_id: str | None
    size: int


@dataclass
class _Shelf:
    """One tenant's stored Responses, oldest first, and the bytes they take."""

    entries: OrderedDict[str, StoredResponse] = field(default_factory=OrderedDict)
    bytes: int = 0


class ResponseStore:
    """Thread-safe (the HTTP handlers share one). Get and delete are O(1); a put also
    measures the JSON it keeps. ``max_responses`` and ``max_bytes`` bound each tenant,
    ``max_total_bytes`` (default: unbounded beyond the tenants' own) all of them."""

    def __init__(self, max_responses: int = 1000, max_bytes: int = 64 * MIB,
                 max_total_bytes: int | None = None) -> None:
        self.max_responses = max_responses
        self.max_bytes = max_bytes
        self.max_total_bytes = max_total_bytes
        self._lock = threading.Lock()
        self._shelves: dict[str, _Shelf] = {}
        self._owners: dict[str, str] = {}  # response id -> its tenant
        self._bytes = 0

    @classmethod
    def for_settings(cls, settings: Settings) -> ResponseStore:
        """Bounded per tenant by ``QUANTA_RESPONSES_STORE_MAX`` / ``..._MAX_MIB``, and
        in all by ``QUANTA_RESPONSES_STORE_TOTAL_MIB``."""
        return cls(settings.responses_store_max, settings.responses_store_max_mib * MIB,
                   settings.responses_store_total_mib * MIB)

    def put(self, tenant: str, response: dict[str, Any], input_items: list[dict[str, Any]],
            previous_response_id: str | None = None) -> bool:
        """Keep ``response`` for ``tenant``, dropping that tenant's oldest beyond its
        bounds (and the largest tenant's oldest beyond the total); False when it is too
        large to keep at all."""
        response_id = response.get("id")
        if not isinstance(response_id, str):
            return False
        size = len(json.dumps(response)) + len(json.dumps(input_items))
        if (self.max_responses < 1 or size > self.max_bytes
                or (self.max_total_bytes is not None and size > self.max_total_bytes)):
            return False
        entry = StoredResponse(tenant, response, input_items, previous_response_id, size)
        with self._lock:
            if self._owners.get(response_id, tenant) != tenant:
                return False  # ids are the engine's random ones: never taken over
            shelf = self._shelves.setdefault(tenant, _Shelf())
            old = shelf.entries.pop(response_id, None)
            if old is not None:
                shelf.bytes -= old.size
                self._bytes -= old.size
            shelf.entries[response_id] = entry
            shelf.bytes += size
            self._bytes += size
            self._owners[response_id] = tenant
            while len(shelf.entries) > self.max_responses or shelf.bytes > self.max_bytes:
                self._drop_oldest(tenant)
            while self.max_total_bytes is not None and self._bytes > self.max_total_bytes:
                self._drop_oldest(max(self._shelves, key=lambda t: self._shelves[t].bytes))
            return self._owners.get(response_id) == tenant

    def _drop_oldest(self, tenant: str) -> None:
        """Drop the tenant's oldest Response (under the lock)."""
        shelf = self._shelves[tenant]
        response_id, dropped = shelf.entries.popitem(last=False)
        shelf.bytes -= dropped.size
        self._bytes -= dropped.size
        del self._owners[response_id]
        if not shelf.entries:
            del self._shelves[tenant]

    def get(self, tenant: str, response_id: str) -> StoredResponse | None:
        """The tenant's stored Response; None for unknown ids and other tenants' alike."""
        with self._lock:
            shelf = self._shelves.get(tenant)
            return shelf.entries.get(response_id) if shelf is not None else None

    def delete(self, tenant: str, response_id: str) -> bool:
        with self._lock:
            shelf = self._shelves.get(tenant)
            entry = shelf.entries.pop(response_id, None) if shelf is not None else None
            if shelf is None or entry is None:
                return False
            shelf.bytes -= entry.size
            self._bytes -= entry.size
            del self._owners[response_id]
            if not shelf.entries:
                del self._shelves[tenant]
        return True

    def history(self, tenant: str, response_id: str) -> list[dict[str, Any]] | None:
        """The conversation ``response_id`` ends, as input items, oldest first: each stored
        Response's input items and output, back along ``previous_response_id`` to the first
        (or to the oldest still stored). Instructions are not carried over, as OpenAI
        documents. None when the tenant has no such Response."""
        chain: list[StoredResponse] = []
        seen: set[str] = set()
        current: str | None = response_id
        while current is not None and current not in seen:
            entry = self.get(tenant, current)
            if entry is None:
                break
            chain.append(entry)
            seen.add(current)
            current = entry.previous_response_id
        if not chain:
            return None
        items: list[dict[str, Any]] = []
        for entry in reversed(chain):
            items += [_as_engine_input(item) for item in entry.input_items]
            items += [item for item in entry.response.get("output") or []
                      if isinstance(item, dict)]
        return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._owners)


def input_items(value: Any) -> list[dict[str, Any]]:
    """A request's ``input`` as OpenAI lists it (``GET /v1/responses/{id}/input_items``):
    a string is one user message; a message's string content becomes one text part
    (``input_text``, or ``output_text`` for the assistant's); each item gets an id."""
    if isinstance(value, str):
        value = [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        return []
    items = []
    for raw in value:
        if not isinstance(raw, dict):
            continue
        item = dict(raw)
        if item.get("type", "message") == "message" and "role" in item:
            item["type"] = "message"
            assistant = item["role"] == "assistant"
            content = item.get("content")
            if isinstance(content, str):
                item["content"] = [_output_text(content) if assistant
                                   else {"type": "input_text", "text": content}]
            item.setdefault("status", "completed")
        prefix = "msg" if item.get("type") == "message" else "item"
        item.setdefault("id", f"{prefix}_{uuid.uuid4().hex}")
        items.append(item)
    return items


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _as_engine_input(item: dict[str, Any]) -> dict[str, Any]:
    """A stored input item as a new request's input: messages other than the assistant's
    without the id and status this store gave them (request input takes neither)."""
    if item.get("type") == "message" and item.get("role") != "assistant":
        return {k: v for k, v in item.items() if k not in ("id", "status")}
    return item

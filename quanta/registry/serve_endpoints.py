"""The serve_endpoint table's row API: which ``quanta serve`` process serves which base.

One server serves one base model (as vLLM does), so a node or cluster with several
bases runs several, and everything that sends a client somewhere (the tune API, the
console, a server asked for another base's model) reads here where each base is
served. A server writes only its own row: :meth:`register` when it starts serving,
:meth:`heartbeat` while it runs, :meth:`unregister` at a clean shutdown. A server that
was killed cannot delete its row, so readers take a row not refreshed for ``ttl``
seconds (``QUANTA_SERVE_ENDPOINT_TTL``) as gone, and the next registration deletes it.
Times are the writers' clocks: the ttl must exceed the clock skew between nodes.
"""

from __future__ import annotations

import os
import socket
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from quanta.registry import tables as t
from quanta.registry.ids import new_id
from quanta.registry.records import ServeEndpointRecord
from quanta.registry.tables import utcnow

if TYPE_CHECKING:
    from quanta.registry.registry import Registry

URL_SCHEMES = ("http://", "https://")
MAX_ADDRESS = 255  # the url and grpc columns' length


class ServeEndpointRows:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    @property
    def ttl(self) -> float:
        """Seconds a row stays live without a heartbeat."""
        return self._registry.settings.serve_endpoint_ttl

    # -- the server's side ---------------------------------------------------------------

    def register(self, *, base_model_id: str, engine: str, url: str,
                 grpc: str | None = None, host: str | None = None,
                 pid: int | None = None) -> ServeEndpointRecord:
        """Record a server that starts serving ``base_model_id`` at ``url`` (this
        process on this machine unless ``host``/``pid`` say otherwise); rows nobody
        refreshed within the ttl are deleted on the way (servers that were killed)."""
        if not url.startswith(URL_SCHEMES) or len(url) > MAX_ADDRESS:
            raise ValueError(f"a serve endpoint's URL is http(s)://... in at most "
                             f"{MAX_ADDRESS} characters, not {url!r}")
        now = utcnow()
        with self._registry.session() as s:
            s.execute(delete(t.ServeEndpoint).where(t.ServeEndpoint.last_seen < self._since()))
            row = t.ServeEndpoint(id=new_id("serve"), base_model_id=base_model_id,
                                  engine=engine, url=url.rstrip("/"), grpc=grpc or None,
                                  host=host or socket.gethostname(),
                                  pid=os.getpid() if pid is None else pid,
                                  started_at=now, last_seen=now)
            s.add(row)
            s.flush()
            return _record(row)

    def heartbeat(self, endpoint: ServeEndpointRecord) -> ServeEndpointRecord:
        """Mark the server alive now. A row deleted meanwhile (the server stalled past the
        ttl and a registration swept it) is written again, so it is advertised again."""
        now = utcnow()
        with self._registry.session() as s:
            changed = s.execute(update(t.ServeEndpoint)
                                .where(t.ServeEndpoint.id == endpoint.id)
                                .values(last_seen=now))
            if changed.rowcount != 1:
                columns = {f.name: getattr(endpoint, f.name) for f in fields(endpoint)}
                s.add(t.ServeEndpoint(**{**columns, "last_seen": now}))
            s.flush()
            return _record(s.get(t.ServeEndpoint, endpoint.id, populate_existing=True))

    def unregister(self, endpoint_id: str) -> bool:
        """Delete the server's row (a clean shutdown); whether it was there."""
        with self._registry.session() as s:
            gone = s.execute(delete(t.ServeEndpoint).where(t.ServeEndpoint.id == endpoint_id))
            return gone.rowcount == 1

    # -- readers -------------------------------------------------------------------------

    def live(self, base_model_id: str | None = None, *,
             ttl: float | None = None) -> list[ServeEndpointRecord]:
        """Servers seen within ``ttl`` seconds (default: the setting), of one base or all,
        by base model then URL, the most recently seen first within one URL."""
        query = select(t.ServeEndpoint).where(t.ServeEndpoint.last_seen >= self._since(ttl))
        if base_model_id is not None:
            query = query.where(t.ServeEndpoint.base_model_id == base_model_id)
        with self._registry.session() as s:
            return [_record(row) for row in s.scalars(query.order_by(
                t.ServeEndpoint.base_model_id, t.ServeEndpoint.url,
                t.ServeEndpoint.last_seen.desc()))]

    def for_base(self, base_model_id: str) -> list[ServeEndpointRecord]:
        """The live servers of one base model."""
        return self.live(base_model_id)

    def _since(self, ttl: float | None = None) -> datetime:
        return utcnow() - timedelta(seconds=self.ttl if ttl is None else ttl)


def _record(row: Any) -> ServeEndpointRecord:
    """The row's record, its times in UTC on every database (SQLite hands back naive
    datetimes), so readers can subtract them from now."""
    record = ServeEndpointRecord.of(row)
    return replace(record, started_at=_utc(record.started_at), last_seen=_utc(record.last_seen))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

"""Database engine, sessions and migrations: SQLite by default, any PostgreSQL URL the same way."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from quanta.registry.errors import NotFoundError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a generous busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine, lock_dir: Path | None = None) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    if engine.dialect.name == "sqlite":
        assert lock_dir is not None
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / "migrate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _upgrade(engine, cfg)
    else:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")


def _upgrade(engine: Engine, cfg: Config) -> None:
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


# PostgreSQL advisory lock between blob writers (shared) and garbage collection
# (exclusive); on SQLite the database's single write lock serialises them already.
BLOB_LOCK = 727275


def lock_blobs(session: Session, *, exclusive: bool, wait: bool = True) -> bool:
    """Hold, until the transaction ends, the lock that keeps garbage collection from
    deleting a blob a writer is about to reference (and the writer from reviving one GC
    is deleting). With ``wait=False``, returns False at once if it is taken (a queued
    exclusive request would otherwise hold up every writer behind it)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    mode = "_shared" if not exclusive else ""
    if wait:
        session.execute(text(f"SELECT pg_advisory_xact_lock{mode}({BLOB_LOCK})"))
        return True
    return bool(session.scalar(text(f"SELECT pg_try_advisory_xact_lock{mode}({BLOB_LOCK})")))


def compare_and_set(session: Session, table: Any, row_id: str, expect: dict[str, Any],
                    **values: Any) -> bool:
    """Update the row only if its columns hold ``expect`` (an UPDATE whose WHERE names the
    state the caller expects); whether it matched. The guard of every queue's writes."""
    where = [getattr(table, column) == value for column, value in expect.items()]
    changed = session.execute(update(table).where(table.id == row_id, *where).values(**values))
    return changed.rowcount == 1


def keyset_page(session: Session, table: Any, key: Any, scope: Any, scope_value: Any, *,
                after: str | None, order: str, limit: int | None, missing: str,
                where: tuple[Any, ...] = ()) -> list[Any]:
    """The rows of ``table`` whose ``scope`` column is ``scope_value`` (and ``where``),
    ordered by ``key`` then id (``order``: asc or desc), after the row ``after`` (OpenAI's
    cursor), at most ``limit + 1``: one more than a page says whether more follow. A
    cursor outside the scope (another tenant's, say) is NotFoundError(``missing``), as
    one that never existed."""
    query = select(table).where(scope == scope_value, *where)
    if after is not None:
        cursor = session.get(table, after)
        if cursor is None or getattr(cursor, scope.key) != scope_value:
            raise NotFoundError(missing)
        at = getattr(cursor, key.key)
        if order == "desc":
            query = query.where((key < at) | ((key == at) & (table.id < cursor.id)))
        else:
            query = query.where((key > at) | ((key == at) & (table.id > cursor.id)))
    if order == "desc":
        query = query.order_by(key.desc(), table.id.desc())
    else:
        query = query.order_by(key.asc(), table.id.asc())
    if limit is not None:
        query = query.limit(limit + 1)
    return list(session.scalars(query))


def insert_for(session: Session) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_*``: PostgreSQL and SQLite spell
    upserts the same way), for rows several processes may create at once."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql"
            else sqlite.insert)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    with factory() as session, session.begin():
        yield session

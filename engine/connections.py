"""Connections one unit of work hands on to the next in the same process.

A web request's unit of work takes one connection and gives it back at its end. Through
SQLAlchemy's pool that is a checkout (a new ``Connection``, the pool's queue, its checkout
events) and a checkin (the reset, the checkin events, the queue) on every request: about 4 %
of an API transition's instructions. A shelf keeps up to the pool's size of connections
checked out between units of work instead: ``take`` hands out the one given back last (warm
in the caches), ``give_back`` shelves a connection whose transaction has ended, and closes
(gives the pool) one that is still in a transaction, broken, or one too many.

What the pool does at checkout, the shelf does at ``take``: on PostgreSQL a connection that
lay on the shelf longer than the engine's ping bound (``engine.db.PING_AFTER_IDLE_SECONDS``)
is pinged first, and one the server has dropped is thrown away for a fresh one. The engine's
``dispose()`` closes what is on its shelf, and a forked child forgets its parent's shelves
(the parent's connections are not the child's to use or close).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import QueuePool

_SHELVES: weakref.WeakKeyDictionary[Engine, ConnectionShelf] = weakref.WeakKeyDictionary()


class ConnectionShelf:
    """Up to ``size`` connections of ``engine`` kept between units of work; a shelved one
    idle longer than ``ping_after`` seconds is pinged before use (None: never)."""

    def __init__(self, engine: Engine, *, size: int, ping_after: float | None) -> None:
        self.engine = engine
        self.size = size
        self.ping_after = ping_after
        self._shelf: list[tuple[Connection, float]] = []
        self._lock = threading.Lock()

    def take(self) -> Connection:
        """A connection not in a transaction: the last one given back, else the pool's."""
        with self._lock:
            item = self._shelf.pop() if self._shelf else None
        if item is not None:
            conn, since = item
            if self.ping_after is None or time.monotonic() - since <= self.ping_after:
                return conn
            try:
                ping(self.engine, conn.connection.dbapi_connection)
                return conn
            except DisconnectionError:
                conn.invalidate()  # dropped while it lay here: a fresh one from the pool
                conn.close()
            except BaseException:
                conn.close()  # not left half-owned: the pool takes it back
                raise
        return self.engine.connect()

    def give_back(self, conn: Connection) -> None:
        """Shelve ``conn`` for the next ``take``; close it when it is still in a transaction,
        closed or invalidated, or when the shelf is full."""
        if not (conn.closed or conn.invalidated or conn.in_transaction()):
            with self._lock:
                if len(self._shelf) < self.size:
                    self._shelf.append((conn, time.monotonic()))
                    return
        conn.close()

    def clear(self, *_: Any) -> None:
        """Close every shelved connection now (``engine.dispose()``: the pool they came from
        is gone, so they are closed rather than given back to it)."""
        with self._lock:
            items, self._shelf = self._shelf, []
        for conn, _since in items:
            conn.invalidate()
            conn.close()

    def forget(self) -> None:
        """Drop the shelved connections without touching them (a forked child's copies)."""
        self._shelf = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._shelf)


def ping(engine: Engine, dbapi_connection: Any) -> None:
    """One round trip on ``dbapi_connection``; ``DisconnectionError`` when the server has
    dropped it, any other error as the driver raised it."""
    dialect = engine.dialect
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, dbapi_connection, None):
            raise DisconnectionError("the connection was closed while idle") from exc
        raise


def install(engine: Engine, *, ping_after: float | None) -> ConnectionShelf | None:
    """Give ``engine`` a shelf as large as its pool (``engine.db.make_engine`` does). Only a
    ``QueuePool`` engine gets one: its connections already pass from thread to thread
    (SQLite's in-memory and single-connection pools keep theirs to one thread or one use)."""
    if not isinstance(engine.pool, QueuePool):
        return None
    shelf = _SHELVES[engine] = ConnectionShelf(
        engine, size=engine.pool.size(), ping_after=ping_after
    )
    event.listen(engine, "engine_disposed", shelf.clear)
    return shelf


def shelf_of(engine: Engine) -> ConnectionShelf | None:
    return _SHELVES.get(engine)


def take(engine: Engine) -> Connection:
    """A connection of ``engine`` for a unit of work: from its shelf when it has one."""
    shelf = _SHELVES.get(engine)
    return shelf.take() if shelf is not None else engine.connect()


def give_back(engine: Engine, conn: Connection) -> None:
    """The unit of work is over: shelve ``conn`` (or close it when ``engine`` has no shelf)."""
    shelf = _SHELVES.get(engine)
    if shelf is not None:
        shelf.give_back(conn)
    else:
        conn.close()


def _forget_all() -> None:
    for shelf in list(_SHELVES.values()):
        shelf.forget()


os.register_at_fork(after_in_child=_forget_all)

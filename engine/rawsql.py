"""Many rows into one table through the driver's own executemany, parameters pre-rendered.

For the paths that write thousands of rows at once (the bulk create of an
import, the timer sweep). SQLAlchemy's executemany spends more per row on
its parameter machinery than the database spends on the row; here the
INSERT is rendered once per dialect, each value goes through the column
type's own bind processor (so what is stored is exactly what SQLAlchemy
would store), values that repeat in a batch (the batch's ``now``, a shared
due time) are rendered once, and the rows go to ``cursor.executemany`` —
which psycopg 3 pipelines on PostgreSQL.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, Insert, Table, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

Processor = Callable[[Any], Any] | None


_FEW = 16  # up to this many rows, ``BulkInsert.execute_few`` writes one statement


class BulkInsert:
    """``INSERT INTO table (columns...) VALUES (...)`` for many rows at once."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._by_dialect: dict[str, tuple[str, tuple[Processor, ...]]] = {}

    def _compiled(self, dialect: Dialect) -> tuple[str, tuple[Processor, ...]]:
        cached = self._by_dialect.get(dialect.name)
        if cached is None:
            quote = dialect.identifier_preparer.quote
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            sql = (
                f"INSERT INTO {quote(self.table.name)} "
                f"({', '.join(quote(c) for c in self.columns)}) "
                f"VALUES ({', '.join(mark for _ in self.columns)})"
            )
            processors = tuple(
                self.table.c[c].type._cached_bind_processor(dialect) for c in self.columns
            )
            cached = self._by_dialect[dialect.name] = (sql, processors)
        return cached

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert ``rows`` (mappings with every column named) in the caller's transaction."""
        return self._run(conn, _columns_of_mappings(rows, self.columns))

    def execute_tuples(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` given as tuples in the order of ``columns``."""
        return self._run(conn, _columns_of_tuples(rows))

    def execute_few(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert a few ``rows`` (tuples in the order of ``columns``) as one multi-row
        statement: a transition's timers or notices, where one statement costs less than an
        executemany's per-row round (and on PostgreSQL is one round trip)."""
        if not rows:
            return 0
        if len(rows) > _FEW:
            return self.execute_tuples(conn, rows)
        sql, processors = self._few_sql(conn.dialect, len(rows))
        values: list[Any] = []
        for row in rows:
            for value, process in zip(row, processors, strict=True):
                if process is not None and value is not None:
                    value = _instant(process, value) if type(value) is datetime else process(value)
                values.append(value)
        if not _queue(conn, sql, values):
            run_driver(conn, sql, values).close()
        return len(rows)

    @lru_cache(maxsize=64)  # noqa: B019 - a few module-level statements, kept for the process
    def _few_sql(self, dialect: Dialect, count: int) -> tuple[str, tuple[Processor, ...]]:
        sql, processors = self._compiled(dialect)
        head, _, group = sql.partition(" VALUES ")
        return f"{head} VALUES {', '.join([group] * count)}", processors

    def _params(self, conn: Connection, columns: list[Sequence[Any]]) -> tuple[str, list[Any]]:
        sql, processors = self._compiled(conn.dialect)
        # Column by column: a processor is looked up once per column, not once per value.
        for index, process in enumerate(processors):
            if process is not None:
                columns[index] = _rendered(columns[index], process)
        return sql, list(zip(*columns, strict=True))

    def _run(self, conn: Connection, columns: list[Sequence[Any]]) -> int:
        if not columns or not columns[0]:
            return 0
        sql, params = self._params(conn, columns)
        run_driver(conn, sql, params, many=True).close()
        return len(params)

    def execute_returning_ids(
        self, conn: Connection, rows: Sequence[Mapping[str, Any]]
    ) -> list[int]:
        """Insert ``rows`` (mappings) and return their ids in the order given."""
        return self._returning_ids(conn, _columns_of_mappings(rows, self.columns))

    def execute_tuples_returning_ids(
        self, conn: Connection, rows: Sequence[Sequence[Any]]
    ) -> list[int]:
        """Insert ``rows`` (tuples in the order of ``columns``) and return their ids in order.

        PostgreSQL: one pipelined executemany with RETURNING; SQLite: under its write
        lock (BEGIN IMMEDIATE), one executemany assigns increasing rowids in the order given.
        """
        return self._returning_ids(conn, _columns_of_tuples(rows))

    def _returning_ids(self, conn: Connection, columns: list[Sequence[Any]]) -> list[int]:
        if not columns or not columns[0]:
            return []
        count_given = len(columns[0])
        if conn.dialect.name != "postgresql":
            # Under SQLite's write lock (BEGIN IMMEDIATE) nobody else inserts, and one
            # executemany assigns increasing rowids: the new ids are those above the old
            # maximum, usually one unbroken run (then no need to read them one by one).
            table = self.table.name
            before = conn.exec_driver_sql(f"SELECT max(id) FROM {table}").scalar() or 0
            self._run(conn, columns)
            count, first, last = conn.exec_driver_sql(
                f"SELECT count(*), min(id), max(id) FROM {table} WHERE id > ?", (before,)
            ).one()
            if count != count_given:  # pragma: no cover - a second writer on SQLite
                raise RuntimeError(f"rows inserted into {table} by another writer")
            if last - first + 1 == count:
                return list(range(first, last + 1))
            return [  # pragma: no cover - rowids with gaps (AUTOINCREMENT after deletions)
                r[0]
                for r in conn.exec_driver_sql(
                    f"SELECT id FROM {table} WHERE id > ? ORDER BY id", (before,)
                )
            ]
        sql, params = self._params(conn, columns)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql + " RETURNING id", params, returning=True)
            out: list[int] = []
            while True:
                out.append(cursor.fetchone()[0])
                if not cursor.nextset():
                    break
        finally:
            cursor.close()
        return out


def _columns_of_mappings(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> list[Sequence[Any]]:
    return [[row[name] for row in rows] for name in names]


def _columns_of_tuples(rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    # the columns as tuples: ``_params`` replaces a rendered column, it never edits one
    return list(zip(*rows, strict=True)) if rows else []


class BulkUpdate:
    """``UPDATE table SET ... WHERE ...`` for many rows at once, through the driver.

    ``set_columns`` and ``where_columns`` map a column to the key its value has in
    each row. Returns the number of rows changed (summed over the rows).
    """

    def __init__(
        self, table: Table, set_columns: Mapping[str, str], where_columns: Mapping[str, str]
    ) -> None:
        self.table = table
        self.set_columns = dict(set_columns)
        self.where_columns = dict(where_columns)
        self._by_dialect: dict[str, tuple[str, tuple[str, ...], tuple[Processor, ...]]] = {}

    def _compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...], tuple[Processor, ...]]:
        cached = self._by_dialect.get(dialect.name)
        if cached is None:
            quote = dialect.identifier_preparer.quote
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            sets = ", ".join(f"{quote(c)} = {mark}" for c in self.set_columns)
            wheres = " AND ".join(f"{quote(c)} = {mark}" for c in self.where_columns)
            sql = f"UPDATE {quote(self.table.name)} SET {sets} WHERE {wheres}"
            names = (*self.set_columns, *self.where_columns)
            keys = (*self.set_columns.values(), *self.where_columns.values())
            processors = tuple(self.table.c[c].type._cached_bind_processor(dialect) for c in names)
            cached = self._by_dialect[dialect.name] = (sql, keys, processors)
        return cached

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        if not rows:
            return 0
        _, keys, _ = self._compiled(conn.dialect)
        return self._run(conn, [[row[key] for row in rows] for key in keys])

    def execute_tuples(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """``execute`` for rows given as tuples: the ``set_columns`` values, then the
        ``where_columns`` values, each in the order given."""
        if not rows:
            return 0
        return self._run(conn, _columns_of_tuples(rows))

    def _run(self, conn: Connection, columns: list[Sequence[Any]]) -> int:
        sql, _, processors = self._compiled(conn.dialect)
        for index, process in enumerate(processors):
            if process is not None:
                columns[index] = _rendered(columns[index], process)
        cursor = run_driver(conn, sql, list(zip(*columns, strict=True)), many=True)
        count = int(cursor.rowcount)
        cursor.close()
        return count


def _rendered(values: Sequence[Any], process: Callable[[Any], Any]) -> list[Any]:
    """``process`` applied to each value; a date or time that repeats is rendered once."""
    kinds = set(map(type, values))
    if kinds <= _MEMOISED:
        # Only dates, times and None (a batch's ``now``, its due times, an empty column):
        # each distinct value rendered once, then looked up row by row in C.
        memo = {value: None if value is None else process(value) for value in set(values)}
        return list(map(memo.__getitem__, values))
    return [None if value is None else process(value) for value in values]


_MEMOISED = frozenset({date, datetime, type(None)})


_QUEUED = "rectiflow.queued_writes"  # in Connection.info: writes waiting to go out together


@contextmanager
def pipeline(conn: Connection) -> Iterator[bool]:
    """On PostgreSQL, the writes made inside (``PreparedWrite``, ``BulkInsert.execute_few``)
    are queued and sent together, in one psycopg pipeline, at the block's end: one round trip
    for all of them instead of one each. A read inside first sends what is queued (so it sees
    those writes), and so does any statement through SQLAlchemy (``_send_before_execute``).
    Inside, a queued write's row count is not known (-1); an error from the server is raised
    at the end (or at the next read), as SQLAlchemy's ``DBAPIError``. Yields whether it
    queues: not on SQLite, nor while someone listens to the engine's statements
    (``run_driver`` then goes through SQLAlchemy). An exception inside drops the queue: the
    transaction is rolled back.
    """
    if (
        conn.dialect.name != "postgresql"
        or conn.engine.dispatch.before_cursor_execute
        or _QUEUED in conn.info
    ):
        yield False
        return
    queued: list[tuple[str, Sequence[Any]]] = []
    conn.info[_QUEUED] = queued
    try:
        yield True
        send_queued(conn)
    finally:
        conn.info.pop(_QUEUED, None)


def _queued(conn: Connection) -> list[tuple[str, Sequence[Any]]] | None:
    """The writes a ``pipeline`` block open on ``conn`` has queued (None: no block open; only
    PostgreSQL opens one, so SQLite does not look)."""
    if conn.dialect.name != "postgresql":
        return None
    queued: list[tuple[str, Sequence[Any]]] | None = conn.info.get(_QUEUED)
    return queued


def send_queued(conn: Connection) -> None:
    """Send the writes ``pipeline`` queued on ``conn`` in one round trip: as one statement
    when they can be (``fused``), else in one psycopg pipeline."""
    queued = _queued(conn)
    if not queued:
        return
    batch = list(queued)
    queued.clear()
    if not conn.in_transaction():
        conn.begin()
    dbapi_conn = conn.connection.driver_connection  # psycopg's own (its pipeline, its cursors)
    assert dbapi_conn is not None
    error = conn.dialect.loaded_dbapi.Error
    one: tuple[str, Sequence[Any]] | None = batch[0] if len(batch) == 1 else None
    if one is None:
        sql = fused(tuple(each for each, _ in batch))
        if sql is not None:
            one = (sql, [value for _, values in batch for value in values])
    try:
        if one is not None:
            # psycopg spends about as much per statement (its conversion, a wait, a
            # pipeline's bookkeeping) as the server does: one statement instead of five is
            # most of what a transition's writes cost the client.
            with dbapi_conn.cursor() as cursor:
                cursor.execute(*one)
        else:
            with dbapi_conn.pipeline(), dbapi_conn.cursor() as cursor:
                for each, each_values in batch:
                    cursor.execute(each, each_values)
    except error as exc:
        raise DBAPIError.instance(None, None, exc, error, dialect=conn.dialect) from exc


_WRITE = re.compile(r"\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\"?[\w.]+\"?)", re.I)
_NOT_FUSED = ("RETURNING", "SELECT", "ON CONFLICT")


@lru_cache(maxsize=256)
def fused(statements: tuple[str, ...]) -> str | None:
    """PostgreSQL: ``statements`` (INSERT, UPDATE, DELETE, each with ``%s`` marks) as one
    statement of data-modifying ``WITH`` clauses, the last the main statement — or None where
    that would not do what running them in order does.

    In one statement every part sees the database as it was before the statement: an INSERT
    after an UPDATE of the same table is the same in either form (the UPDATE could not have
    seen rows inserted after it), but an UPDATE or DELETE of a table an earlier statement
    wrote would no longer see that write (and two updates of one row in one statement are
    unpredictable), so such a batch is not fused. Neither is one where a statement reads
    (a ``SELECT`` inside it would not see the earlier writes) or upserts (``ON CONFLICT``
    would not see a row inserted before it), nor one with ``RETURNING`` or its own ``WITH``:
    nothing here reads a queued write's answer, and a data-modifying ``WITH`` may only stand
    at the top level. Foreign keys and the log's append-only triggers check each row as
    before; a constraint that fails fails the whole statement, as it fails the whole
    transaction in a pipeline. The marks keep their order, so the parameters are the
    statements' own, one after the other.
    """
    written: set[str] = set()
    for sql in statements:
        match = _WRITE.match(sql)
        upper = sql.upper()
        if match is None or any(word in upper for word in _NOT_FUSED):
            return None
        table = match.group(2).strip('"').lower()
        if not match.group(1).upper().startswith("INSERT") and table in written:
            return None
        written.add(table)
    *parts, main = statements
    clauses = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(parts))
    return f"WITH {clauses} {main}"


def _queue(conn: Connection, sql: str, values: Sequence[Any]) -> bool:
    """Queue the write when a ``pipeline`` block is open on ``conn``; whether it did."""
    queued = _queued(conn)
    if queued is None:
        return False
    queued.append((sql, values))
    return True


@event.listens_for(Engine, "before_execute")
def _send_before_execute(conn: Connection, *_: Any) -> None:
    """A statement through SQLAlchemy inside a ``pipeline`` block goes after the queued
    writes: they are sent first."""
    if _queued(conn):
        send_queued(conn)


def run_driver(conn: Connection, sql: str, values: Sequence[Any], *, many: bool = False) -> Any:
    """Execute ``sql`` (rendered for the driver) with positional ``values`` (``many``: a list
    of them, executemany) in the connection's transaction; the driver's cursor.

    Straight on the driver's cursor, without SQLAlchemy's per-statement machinery, unless
    someone listens to the engine's statements (``before_cursor_execute``: statement
    counters in the tests, the query benchmark): then through ``exec_driver_sql`` so they
    see every one.
    A driver error is raised as SQLAlchemy's ``DBAPIError``, as ``exec_driver_sql`` raises
    it (``engine.context`` turns races into ``Conflict``).
    """
    if conn.engine.dispatch.before_cursor_execute:
        return conn.exec_driver_sql(sql, list(values) if many else tuple(values))
    if not conn.in_transaction():
        conn.begin()  # as SQLAlchemy's autobegin would (the "begin" event sets SQLite's mode)
    # The driver's own connection: with the synchronous drivers used here (sqlite3, psycopg)
    # ``dbapi_connection`` is it, one attribute away (``driver_connection`` is three calls).
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise DBAPIError.instance(
            sql, values, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    return cursor


def _compile_positional(
    statement: Any, dialect: Dialect
) -> tuple[str, tuple[str, ...], tuple[Processor, ...]]:
    """``statement`` rendered for the driver with positional marks, its bind names in order
    and their bind processors."""
    compiled = statement.compile(dialect=dialect)
    if dialect.paramstyle == "qmark":
        names = tuple(compiled.positiontup or ())
        sql = compiled.string
    else:  # pyformat (psycopg): render positionally as %s, in the order of the text
        names = tuple(_order_of(compiled.string, compiled.binds))
        sql = compiled.string
        for name in names:
            sql = sql.replace(f"%({name})s", "%s")
    processors = tuple(compiled.binds[name].type._cached_bind_processor(dialect) for name in names)
    return sql, names, processors


def _bound(
    names: tuple[str, ...], processors: tuple[Processor, ...], params: Mapping[str, Any]
) -> tuple[Any, ...]:
    out = []
    for name, process in zip(names, processors, strict=True):
        value = params[name]
        if process is not None and value is not None:
            value = _instant(process, value) if type(value) is datetime else process(value)
        out.append(value)
    return tuple(out)


@lru_cache(maxsize=1024)
def _instant(process: Callable[[Any], Any], value: datetime) -> Any:
    """A time bound once: a transition writes its ``now`` into several columns, and the
    due times of one day repeat from ticket to ticket."""
    return process(value)


class PreparedWrite:
    """One INSERT, UPDATE or DELETE built with SQLAlchemy Core, run through the driver.

    Compiled once per dialect; each execution binds its parameters through the
    columns' own bind processors and runs it on the driver's cursor (``run_driver``),
    without SQLAlchemy's per-statement machinery (the hot path of a transition runs a
    few of these). Returns the driver's row count.
    """

    def __init__(self, statement: Any) -> None:
        # Only the row count is read: an INSERT does not ask for its new key back (on
        # PostgreSQL SQLAlchemy would add ``RETURNING id``).
        self.statement = statement.inline() if isinstance(statement, Insert) else statement
        self._by_dialect: dict[str, tuple[str, tuple[str, ...], tuple[Processor, ...]]] = {}

    def _compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...], tuple[Processor, ...]]:
        cached = self._by_dialect.get(dialect.name)
        if cached is None:
            cached = self._by_dialect[dialect.name] = _compile_positional(self.statement, dialect)
        return cached

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """The row count; -1 when queued in a ``pipeline`` block (not known yet)."""
        sql, names, processors = self._compiled(conn.dialect)
        values = _bound(names, processors, params)
        if _queue(conn, sql, values):
            return -1
        cursor = run_driver(conn, sql, values)
        count = int(cursor.rowcount)
        cursor.close()
        return count


class PreparedQuery:
    """One SELECT built with SQLAlchemy Core, run through the driver (``run_driver``).

    Rows come back as named tuples with each column's value converted by the column
    type's own result processor, exactly as SQLAlchemy would return them.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self.row_type: Any = namedtuple(  # type: ignore[misc]
            "Row", [c.key for c in statement.exported_columns]
        )
        self._by_dialect: dict[str, tuple[str, tuple[str, ...], tuple[Processor, ...]]] = {}
        # (index, processor) of the columns whose values need converting, per dialect; made
        # at the first execution, from the driver's type codes (psycopg's numeric types).
        self._results: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}

    def _compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...], tuple[Processor, ...]]:
        cached = self._by_dialect.get(dialect.name)
        if cached is None:
            cached = self._by_dialect[dialect.name] = _compile_positional(self.statement, dialect)
        return cached

    def _converters(self, dialect: Dialect, cursor: Any) -> list[tuple[int, Any]]:
        convert = self._results.get(dialect.name)
        if convert is None:
            # a driver cursor, or SQLAlchemy's result around one (run_driver with listeners)
            description = getattr(cursor, "description", None) or cursor.cursor.description
            codes = [d[1] for d in description]
            processors = [
                c.type._cached_result_processor(dialect, code)
                for c, code in zip(self.statement.exported_columns, codes, strict=True)
            ]
            convert = self._results[dialect.name] = [
                (i, process) for i, process in enumerate(processors) if process is not None
            ]
        return convert

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        sql, names, processors = self._compiled(conn.dialect)
        if _queued(conn):
            send_queued(conn)  # the read sees the writes queued before it
        cursor = run_driver(conn, sql, _bound(names, processors, params))
        convert = self._converters(conn.dialect, cursor)
        raw = cursor.fetchall()
        cursor.close()
        make = self.row_type._make
        if not convert:
            return [make(row) for row in raw]
        out = []
        for row in raw:
            values = list(row)
            for i, process in convert:
                values[i] = process(values[i])
            out.append(make(values))
        return out

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first row, or None."""
        rows = self.all(conn, params)
        return rows[0] if rows else None


def _order_of(sql: str, binds: Mapping[str, Any]) -> list[str]:
    """The bind names of a pyformat statement in the order they appear in its text."""
    found = []
    for name in binds:
        at = sql.find(f"%({name})s")
        if at >= 0:
            found.append((at, name))
    return [name for _, name in sorted(found)]


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|\?|__\[POSTCOMPILE_(\w+)\]")


class PreparedInQuery(PreparedQuery):
    """``PreparedQuery`` for a statement with an expanding ``IN`` list
    (``bindparam(..., expanding=True)``; a sweep's chunk of ids) or a write with RETURNING.

    Rendered for each length the list has (cached), literal binds (a LIMIT's OFFSET)
    bound with their own values; a value that repeats in the result (a batch's shared
    due time) is converted once.
    """

    def __init__(self, statement: Any) -> None:
        super().__init__(statement)
        self._by_length: dict[tuple[str, int], tuple[str, tuple[Any, ...]]] = {}

    def _expanded(self, dialect: Dialect, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        length = next((len(v) for v in params.values() if isinstance(v, list | tuple)), 0)
        cached = self._by_length.get((dialect.name, length))
        if cached is not None:
            return cached
        compiled = self.statement.compile(dialect=dialect)
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        positional = iter(compiled.positiontup or ())
        names: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            if match.group(2):  # the expanding list: one mark a value
                names.append(match.group(2))
                next(positional, None)
                return ", ".join([mark] * length)
            names.append(match.group(1) or next(positional))
            return mark

        sql = _PLACEHOLDER.sub(placeholder, compiled.string)
        binds = tuple(
            (
                name,
                compiled.binds[name].type._cached_bind_processor(dialect),
                compiled.binds[name].effective_value,  # a literal's own value
            )
            for name in names
        )
        cached = self._by_length[(dialect.name, length)] = (sql, binds)
        return cached

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """The rows for ``params`` (the expanding list must not be empty)."""
        sql, binds = self._expanded(conn.dialect, params)
        values: list[Any] = []
        for name, process, default in binds:
            value = params.get(name, default)
            if isinstance(value, list | tuple):
                values.extend(value if process is None else [process(v) for v in value])
            else:
                values.append(value if process is None or value is None else process(value))
        cursor = run_driver(conn, sql, tuple(values))
        convert = self._converters(conn.dialect, cursor)
        raw = cursor.fetchall()
        cursor.close()
        if not convert:
            return list(map(self.row_type._make, raw))
        if not raw:
            return []
        columns: list[Any] = list(zip(*raw, strict=True))
        for index, process in convert:
            # each distinct value converted once (a batch's due times repeat), then looked up
            converted = {value: process(value) for value in set(columns[index])}
            columns[index] = map(converted.__getitem__, columns[index])
        return list(map(self.row_type._make, zip(*columns, strict=True)))

"""The database engine from DATABASE_URL: an SQLite file by default, PostgreSQL in production."""

from __future__ import annotations

import asyncio
import functools
import itertools
import sqlite3
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from typing import Any
from urllib.parse import urlsplit

import aiosqlite
import asyncpg
import msgspec
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory
from piccolo.table import Table


def sqlite_path(url: str) -> Path:
    """`sqlite:///var/x.sqlite` is relative to the working directory, `sqlite:////abs` absolute."""
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_absolute() else Path.cwd() / path


class _UnicodeConnection(sqlite3.Connection):
    """SQLite's own lower() folds ASCII only, so "østre" would not find "Østre" there. This
    one folds like Python (and like PostgreSQL's lower()), so a search behaves the same on
    both engines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def contains_text(column: str, text: str) -> tuple[str, str]:
    """SQL (with one `{}` placeholder) for: `column` contains `text`, ignoring case, the same
    on SQLite and PostgreSQL; and the placeholder's value. A typed "%" or "_" is text, not a
    pattern."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"lower({column}) LIKE lower({{}}) ESCAPE '\\'", f"%{escaped}%"


def create_engine(url: str) -> Engine:
    scheme = urlsplit(url).scheme
    if scheme in {"postgresql", "postgres"}:
        return PostgresEngine(config={"dsn": url})
    if scheme == "sqlite" and url.startswith("sqlite:///"):
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A busy timeout lets concurrent writers wait instead of failing with "database is locked".
        return SQLiteEngine(path=str(path), timeout=30, factory=_UnicodeConnection)
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")


async def _keep_connection_as_is(connection: asyncpg.Connection) -> None:
    """asyncpg's default reset on release (unlock advisory locks, CLOSE ALL, UNLISTEN, RESET
    ALL) is one more round trip per query. The portal sets no session state (no SET, LISTEN,
    session advisory locks or WITH HOLD cursors), so there is nothing to reset; an open
    transaction is still rolled back on release."""


# SQLite: connections kept open for the reads `fetch` makes outside a transaction. Piccolo
# opens a connection (and a thread) for every query, about 1 ms here; a kept one answers in
# a tenth of that. Each runs its statements in order on its own thread, in autocommit: every
# statement sees what was committed before it (WAL lets it read while another connection
# writes), and none holds a snapshot between statements.
SQLITE_READERS = 4


@dataclass
class _Readers:
    connections: list[aiosqlite.Connection]
    turns: Iterator[aiosqlite.Connection]


# By id: an engine lives as long as the process, and Piccolo's cannot be weakly referenced.
_sqlite_readers: dict[int, _Readers] = {}


async def open_pool(engine: Engine, size: int) -> None:
    """PostgreSQL: a pool of `size` connections (the requests one process serves at once, so
    none waits for a connection). SQLite: a few connections for reads (see SQLITE_READERS);
    Piccolo still opens one per query for everything else."""
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(
            min_size=min(10, size), max_size=size, reset=_keep_connection_as_is
        )
    elif isinstance(engine, SQLiteEngine) and id(engine) not in _sqlite_readers:
        connections = []
        try:
            for _ in range(SQLITE_READERS):
                connection = await aiosqlite.connect(**engine.connection_kwargs)
                connection.row_factory = dict_factory
                connections.append(connection)
        except BaseException:
            # Each holds a thread the process would wait for at exit.
            for connection in connections:
                await connection.close()
            raise
        _sqlite_readers[id(engine)] = _Readers(connections, itertools.cycle(connections))


async def close_pool(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()
    elif (readers := _sqlite_readers.pop(id(engine), None)) is not None:
        for connection in readers.connections:
            await connection.close()


async def fetch(table: type[Table], sql: str, *args: Any) -> list[Mapping[str, Any]]:
    """The rows of a raw statement with `{}` placeholders, as `table.raw(sql, *args)` gives
    them, for the statements every page runs. On PostgreSQL it goes to the driver directly:
    Piccolo's query object, placeholder compiling and copying every row into a dict cost as
    much as a short query itself. On SQLite, outside a transaction, it reads on a kept
    connection (see SQLITE_READERS)."""
    engine = table._meta.db
    transaction = engine.current_transaction.get()
    if isinstance(engine, PostgresEngine):
        statement = _placeholders(sql, "$")
        if transaction is not None:
            return await transaction.connection.fetch(statement, *args)
        if engine.pool is not None:
            return await engine.pool.fetch(statement, *args)
    elif transaction is None and (readers := _sqlite_readers.get(id(engine))) is not None:
        rows = await next(readers.turns).execute_fetchall(_placeholders(sql, "?"), args)
        return list(rows)  # type: ignore[arg-type]
    return await table.raw(sql, *args)


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str, style: str) -> str:
    """`{}` → `$1`, `$2`, … (style "$", PostgreSQL) or `?` (style "?", SQLite), as Piccolo
    compiles them; `{{` and `}}` stand for braces."""
    count = sum(1 for _, field, _, _ in Formatter().parse(sql) if field is not None)
    if style == "?":
        return sql.format(*("?" for _ in range(count)))
    return sql.format(*(f"${number}" for number in range(1, count + 1)))


async def lock_row(table: type[Table], row_id: int) -> None:
    """Inside a write transaction: hold this row until the transaction ends, so writers that
    lock it queue (PostgreSQL). SQLite's write transactions are one at a time already."""
    if isinstance(table._meta.db, PostgresEngine):
        await (
            table.select(table._meta.primary_key)
            .where(table._meta.primary_key == row_id)
            .lock_rows()
        )


async def lock_name(table: type[Table], name: str) -> None:
    """Inside a write transaction: hold a lock named `name` until it ends, for writers that
    read, then insert, with no row of their own to lock (PostgreSQL: an advisory lock;
    SQLite's write transactions are one at a time already)."""
    if isinstance(table._meta.db, PostgresEngine):
        await fetch(table, "SELECT pg_advisory_xact_lock(hashtext({}))", name)


def is_unique_violation(error: BaseException) -> bool:
    """Both engines' "unique constraint failed", recognised in one place."""
    if isinstance(error, sqlite3.IntegrityError):
        return getattr(error, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_UNIQUE"
    return isinstance(error, asyncpg.exceptions.UniqueViolationError)


class _ImmediateTransaction(SQLiteTransaction):
    """BEGIN IMMEDIATE takes the write lock up front, so two writers cannot both read and then
    collide at commit. If BEGIN itself fails, the stock transaction leaks its connection (and
    the process hangs at exit): close it."""

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            await self.begin()
        except BaseException:
            await self.connection.close()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self


# One lock per event loop: ledger writes in one process queue here instead of spinning in
# SQLite's busy wait (about 20x faster under load); other processes still meet SQLite's lock.
_sqlite_write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def write_transaction(engine: Engine) -> AsyncIterator[None]:
    """A transaction for writes that must not interleave (minutes, money), on either engine."""
    if engine.current_transaction.get() is not None:
        async with engine.transaction():  # joins the outer transaction
            yield
        return
    if isinstance(engine, SQLiteEngine):
        loop = asyncio.get_running_loop()
        lock = _sqlite_write_locks.setdefault(loop, asyncio.Lock())
        async with lock, _ImmediateTransaction(engine, TransactionType.immediate):
            yield
    else:
        async with engine.transaction():
            yield


def writing(engine: Engine) -> AbstractAsyncContextManager[None]:
    """Around a write that is atomic on its own: on SQLite it queues behind this process's
    other writers instead of spinning in SQLite's busy wait; PostgreSQL needs nothing."""
    if isinstance(engine, SQLiteEngine):
        return write_transaction(engine)
    return nullcontext()


# --- reading a page in one round trip ----------------------------------------------------
# A page's regions come back as JSON arrays in one row (see services/overview.py): each a
# scalar subquery that the two engines spell differently.


def json_rows(
    engine: Engine,
    select: str,
    columns: Sequence[str],
    *,
    order_by: str,
    json_columns: Sequence[str] = (),
) -> str:
    """A scalar subquery: the rows of `select` (a SELECT whose output names `columns`, with
    its own ORDER BY, and LIMIT if any) as one JSON array of objects, `[]` when it has none.
    `order_by` orders the array by those output names; `json_columns` are columns that hold
    JSON themselves (nested `json_rows`/`json_values`), kept as JSON, not as text."""
    if isinstance(engine, PostgresEngine):
        pairs = ", ".join(f"'{c}', t.{c}" for c in columns)
        return (
            f"(SELECT coalesce(json_agg(json_build_object({pairs}) ORDER BY {_prefixed(order_by)}),"
            f" '[]'::json) FROM ({select}) AS t)"
        )
    # SQLite (3.40 has no ORDER BY inside aggregates) aggregates in the subquery's order; a
    # JSON value loses its JSON subtype in a subquery's column, so json() restores it.
    pairs = ", ".join(
        f"'{c}', json(t.{c})" if c in json_columns else f"'{c}', t.{c}" for c in columns
    )
    return f"(SELECT json_group_array(json_object({pairs})) FROM ({select}) AS t)"


def json_values(engine: Engine, select: str, column: str, *, order_by: str) -> str:
    """A scalar subquery: the one column of `select` (ordered by `order_by` there) as a JSON
    array of values, `[]` when it has none."""
    if isinstance(engine, PostgresEngine):
        return (
            f"(SELECT coalesce(json_agg(t.{column} ORDER BY {_prefixed(order_by)}), '[]'::json)"
            f" FROM ({select}) AS t)"
        )
    return f"(SELECT json_group_array(t.{column}) FROM ({select}) AS t)"


def date_parameter(engine: Engine) -> str:
    """A date placeholder usable as a value of its own (`SELECT {} AS today`): PostgreSQL
    must be told its type; SQLite compares the ISO text Piccolo sends."""
    return "CAST({} AS DATE)" if isinstance(engine, PostgresEngine) else "{}"


def _prefixed(order_by: str) -> str:
    """`a, b DESC` → `t.a, t.b DESC`: the aggregate orders by the subquery's output names."""
    return ", ".join(f"t.{term.strip()}" for term in order_by.split(","))


def from_json(value: Any, into: Any = Any) -> Any:
    """A `json_rows`/`json_values` column as Python lists and dicts (both drivers give text),
    or as `into` (say `list[SomeStruct]`, its dates and times parsed)."""
    if isinstance(value, str | bytes):
        return msgspec.json.decode(value, type=into)
    return value if into is Any else msgspec.convert(value, into)

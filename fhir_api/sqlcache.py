"""Statements built and compiled once, executed many times (issue 12: the read path at its stack's ceiling).

Profiling showed SQLAlchemy's Python code — building ``select()`` objects, coercing arguments, computing
cache keys, the ORM's result machinery — at 57–68 % of a search's CPU, SQLite itself at 5–7 %. So the
read path keeps SQLAlchemy for what it is good at (one SQL dialect-correct text for SQLite and
PostgreSQL, the connection pool, the transaction) and skips the rest:

* a statement is built once per *shape* (``key``: which tables, conditions and how many values — never
  the values themselves), with named ``bindparam``\\ s, and compiled once per dialect;
* each execution passes only the values, straight to the driver (``Connection.exec_driver_sql``), in the
  order (``qmark``, SQLite) or by the names (``pyformat``, psycopg) the compiled text expects.

Values are plain driver types (str, int, bool, None), except where a bound column has a type the dialect
converts (a ``DateTime`` on SQLite): those conversions are kept from the compilation and applied.
"""

from __future__ import annotations

import collections
import functools
import threading
import typing as t
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.engine import CursorResult


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    #: bind names in placeholder order for positional paramstyles (qmark); None for named ones
    positions: tuple[str, ...] | None
    #: values of the binds the statement carries itself (constants written into the expression)
    constants: dict[str, t.Any]
    #: the dialect's conversions of typed binds (e.g. a datetime for SQLite's text timestamps)
    processors: dict[str, t.Callable[[t.Any], t.Any]]

    def _arguments(self, params: t.Mapping[str, t.Any]) -> t.Any:
        values = {**self.constants, **params}
        for name, process in self.processors.items():
            values[name] = process(values[name])
        if self.positions is not None:
            return tuple(values[name] for name in self.positions)
        return values

    def execute(self, connection: Connection, params: t.Mapping[str, t.Any]) -> CursorResult[t.Any]:
        """Run a statement through SQLAlchemy (writes: part of the connection's transaction)."""
        return connection.exec_driver_sql(self.sql, self._arguments(params))

    def run(self, driver_connection: t.Any, params: t.Mapping[str, t.Any]) -> int:
        """Run a statement on the driver's connection itself and return how many rows it changed; the
        caller commits it there too (``driver_connection.commit()``) — for one self-contained write such
        as an audit record."""
        cursor = driver_connection.cursor()
        try:
            cursor.execute(self.sql, self._arguments(params))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def rows(self, connection: Connection, params: t.Mapping[str, t.Any]) -> list[t.Any]:
        """Run a SELECT on the driver's own cursor and return its rows as named tuples.

        For reads only: the driver may open a transaction SQLAlchemy does not track; the pool rolls
        it back when the connection is returned (``reset_on_return``)."""
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, self._arguments(params))
            rows = cursor.fetchall()
            names = tuple(column[0] for column in cursor.description)
        finally:
            cursor.close()
        row_type = _row_type(names)
        return [row_type._make(row) for row in rows]


@functools.lru_cache(maxsize=512)
def _row_type(names: tuple[str, ...]) -> t.Any:
    return collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]


class StatementCache:
    """Compiled statements by (dialect, shape key); least recently used ones leave beyond ``size``."""

    def __init__(self, size: int = 2048):
        self.size = size
        self._items: OrderedDict[tuple[str, t.Hashable], Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, connection: Connection, key: t.Hashable, build: t.Callable[[], t.Any]) -> Compiled:
        dialect = connection.dialect
        full_key = (dialect.name, key)
        with self._lock:
            found = self._items.get(full_key)
            if found is not None:
                self._items.move_to_end(full_key)
                return found
        compiled = build().compile(dialect=dialect)
        positions = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup is not None else None
        constants = {k: v for k, v in compiled.params.items() if v is not None}
        processors = dict(getattr(compiled, "_bind_processors", {}))
        item = Compiled(str(compiled), positions, constants, processors)
        with self._lock:
            self._items[full_key] = item
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return item


#: the process-wide cache (statements are the same for every request and worker thread)
STATEMENTS = StatementCache()

"""What ``Database.read()`` and ``write()`` hand out: the one sqlite3 connection of the
database, with SQLAlchemy over it only for the callers that build Core statements.

The statements a chat turn needs (a conversation, its messages, usage rows, recovery) are
plain SQL on ``raw``, so a command like ``halext-desktop ask`` never imports SQLAlchemy
(~140 ms of its start). Core statements (reports, search, export…) go through
``execute``/``exec_driver_sql``: the first one of the process builds an engine whose only
connection is this same sqlite3 connection, so they run inside the transaction
``Database`` began in plain SQL, and commit or roll back with it. The engine's pool gets a
``_Shared`` wrapper that ignores commit, rollback and close: the transaction and the
connection belong to ``Database``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection, CursorResult, Engine
    from sqlalchemy.util.typing import TupleAny


class _Shared:
    """The sqlite3 connection as SQLAlchemy's pool sees it: everything passes through
    except what would end ``Database``'s transaction or close its connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def shared_engine(conn: sqlite3.Connection) -> Engine:
    """A SQLAlchemy engine whose one connection is ``conn`` (imports SQLAlchemy)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    return create_engine(
        "sqlite://",
        creator=lambda: _Shared(conn),
        poolclass=StaticPool,
        # Errors must never carry what the user wrote into logs or banners.
        hide_parameters=True,
    )


class Conn:
    """The database connection inside one ``read()`` or ``write()`` block.

    Attributes:
        raw: the sqlite3 connection (plain SQL; rows are tuples).
    """

    def __init__(self, raw: sqlite3.Connection, engine: Callable[[], Engine]) -> None:
        self.raw = raw
        self._engine = engine
        self._sa: Connection | None = None

    def sql(self, statement: str, params: Iterable[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run one plain SQL statement (``?`` or ``:name`` parameters)."""
        return self.raw.execute(statement, params)  # type: ignore[arg-type]

    @property
    def sa(self) -> Connection:
        """A SQLAlchemy connection over ``raw`` (built on first use in this block)."""
        if self._sa is None:
            self._sa = self._engine().connect()
        return self._sa

    def execute(self, statement: Any, params: Any = None) -> CursorResult[*TupleAny]:
        """Run a SQLAlchemy Core statement in this block's transaction."""
        if params is None:
            return self.sa.execute(statement)
        return self.sa.execute(statement, params)

    def exec_driver_sql(self, statement: str, params: Any = None) -> CursorResult[*TupleAny]:
        """Plain SQL with SQLAlchemy's result API (``scalar``, ``first``, ``all``…)."""
        if params is None:
            return self.sa.exec_driver_sql(statement)
        return self.sa.exec_driver_sql(statement, params)

    def close(self) -> None:
        """End SQLAlchemy's view of the block (the transaction is ``Database``'s)."""
        sa, self._sa = self._sa, None
        if sa is not None:
            sa.close()

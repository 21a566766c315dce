"""Plain SQL (what a chat turn runs, ``storage.connection``) and SQLAlchemy Core (the other
queries) share the database's one connection: they write the same time text, read each
other's rows, and commit, roll back and roll back to a savepoint together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.db import Database
from halext_desktop.storage.models import conversations as conv_table
from halext_desktop.storage.row_values import from_time_text, time_text

TIMES = [
    datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
    datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # a three-digit year
    datetime(2026, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),  # not UTC
    datetime(2026, 6, 1, 1, 30, 0, 120),  # naive: taken to be UTC
]


@pytest.mark.parametrize("when", TIMES, ids=str)
def test_time_text_is_what_sqlalchemy_writes_and_reads(when: datetime) -> None:
    with Database() as db:
        with db.write() as conn:
            conn.execute(
                insert(conv_table).values(id=1, title="core", created_at=when, updated_at=when)
            )
            conn.sql(
                "INSERT INTO conversations (id, title, created_at, updated_at) "
                "VALUES (2, 'plain', ?, ?)",
                (time_text(when), time_text(when)),
            )
        with db.read() as conn:
            texts = conn.sql("SELECT created_at FROM conversations ORDER BY id").fetchall()
            core = conn.execute(select(conv_table.c.created_at).order_by(conv_table.c.id)).all()
    assert texts[0][0] == texts[1][0] == time_text(when)
    expected = when if when.tzinfo else when.replace(tzinfo=UTC)
    assert [r[0] for r in core] == [expected, expected]
    assert from_time_text(texts[1][0]) == expected


def test_store_rows_read_the_same_through_plain_sql_and_core() -> None:
    with Database() as db:
        store = ConversationStore(db)
        made = store.create("both", created_at=TIMES[0])
        store.add_message(made.id, "user", "hello", created_at=TIMES[0])
        plain = store.get(made.id)  # plain SQL
        (listed,) = store.list()  # Core
    assert plain == listed
    assert plain is not None and plain.created_at == TIMES[0] and plain.message_count == 1


def test_plain_and_core_writes_commit_and_roll_back_together() -> None:
    with Database() as db:
        with pytest.raises(RuntimeError), db.write() as conn:
            conn.execute(insert(conv_table).values(title="core"))
            conn.sql("INSERT INTO conversations (title, created_at, updated_at) VALUES ('p', 0, 0)")
            raise RuntimeError("the change fails")
        with db.write() as conn:
            conn.execute(insert(conv_table).values(title="kept"))
            with pytest.raises(RuntimeError), db.write() as inner:  # a savepoint
                inner.execute(insert(conv_table).values(title="undone (core)"))
                inner.sql(
                    "INSERT INTO conversations (title, created_at, updated_at) "
                    "VALUES ('undone (plain)', 0, 0)"
                )
                raise RuntimeError("this change alone fails")
            conn.sql(
                "INSERT INTO conversations (title, created_at, updated_at) VALUES ('too', 0, 0)"
            )
        with db.read() as conn:
            titles = [r[0] for r in conn.sql("SELECT title FROM conversations ORDER BY id")]
    assert titles == ["kept", "too"]

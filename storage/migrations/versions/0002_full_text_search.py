"""Full-text search: FTS5 indexes over message content and conversation titles.

Both are external-content FTS5 tables (no second copy of the text) kept in sync by
triggers. The ``trigram`` tokenizer gives case-insensitive *substring* matching, which is
what a chat search box promises ("plan" finds "planning" and "deplane"), for queries of
three or more characters; shorter queries use a plain scan. When this SQLite has no FTS5
(or no trigram tokenizer, before 3.34) nothing is created and search scans with LIKE.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = {
    # fts table: (content table, indexed column)
    "messages_fts": ("messages", "content"),
    "conversations_fts": ("conversations", "title"),
}


def _fts5_trigram_available(conn: sa.Connection) -> bool:
    try:
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE temp._fts_probe USING fts5(x, tokenize='trigram')"
        )
    except sa.exc.DBAPIError:
        return False
    conn.exec_driver_sql("DROP TABLE temp._fts_probe")
    return True


def upgrade() -> None:
    conn = op.get_bind()
    if not _fts5_trigram_available(conn):
        return
    for fts, (table, col) in _TABLES.items():
        op.execute(
            f"CREATE VIRTUAL TABLE {fts} USING fts5({col}, content='{table}', "
            f"content_rowid='id', tokenize='trigram')"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts}(rowid, {col}) VALUES (new.id, new.{col}); END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {col}) VALUES ('delete', old.id, old.{col}); END"
        )
        # Only when the indexed column changes: streaming replies and updated_at touches
        # rewrite rows often, and re-indexing an unchanged text is wasted work.
        op.execute(
            f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {col} ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {col}) VALUES ('delete', old.id, old.{col}); "
            f"INSERT INTO {fts}(rowid, {col}) VALUES (new.id, new.{col}); END"
        )
        # Index whatever is already there (a database upgraded from 0001).
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def downgrade() -> None:
    for fts in _TABLES:
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {fts}")

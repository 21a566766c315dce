"""Usage reports from a rollup; a full-text index a third of the size.

- ``usage_hourly``, ``usage_daily``, ``usage_monthly``: per period (the first 13, 10 and 7
  characters of ``created_at``: ``2026-03-01 14``, ``2026-03-01``, ``2026-03``) × model ×
  route × status, the number of requests and the sums the reports need (tokens, latency
  and time to first token with how many rows had one). Triggers on ``ai_usage_logs`` keep
  them exact however rows arrive or go — the app, a restored backup, another program's SQL,
  retention, a clear — and the upgrade fills them from the rows already there. A report
  over any range then reads a few hundred rollup rows (whole months, then days, then hours,
  then the raw rows of the one partial hour) instead of every row ever logged.
- ``messages_fts`` again, with ``detail=none`` and ``columnsize=0``: the trigram index keeps
  which messages hold each trigram, not where (86 → 26 MB per 100,000 messages). Search
  asks it for the messages holding every trigram of a word and checks the text itself, so
  results are the same.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (prefix length of created_at, strftime format of the time bucket it belongs to)
LEVELS = {
    "usage_hourly": (13, "%Y-%m-%d %H:00:00"),
    "usage_daily": (10, "%Y-%m-%d 00:00:00"),
    "usage_monthly": (7, "%Y-%m-01 00:00:00"),
}
KEY = ("period", "bucket", "model_identifier", "route", "status")
SUMS = (
    "requests",
    "prompt_tokens",
    "response_tokens",
    "total_tokens",
    "latency_sum",
    "latency_n",
    "ttft_sum",
    "ttft_n",
)


def _key_values(row: str, length: int, fmt: str) -> list[str]:
    """The rollup key of ``row`` (``new`` or ``old`` in a trigger, a column list in a
    SELECT): a row without a readable time still has a key (empty period and bucket)."""
    prefix = f"{row}." if row else ""
    return [
        f"coalesce(substr({prefix}created_at, 1, {length}), '')",
        f"coalesce(strftime('{fmt}', {prefix}created_at), '')",
        f"{prefix}model_identifier",
        f"{prefix}route",
        f"{prefix}status",
    ]


def _sum_values(row: str) -> list[str]:
    p = f"{row}."
    return [
        "1",
        f"coalesce({p}prompt_tokens, 0)",
        f"coalesce({p}response_tokens, 0)",
        f"coalesce({p}total_tokens, 0)",
        f"coalesce({p}latency_ms, 0)",
        f"({p}latency_ms IS NOT NULL)",
        f"coalesce({p}ttft_ms, 0)",
        f"({p}ttft_ms IS NOT NULL)",
    ]


def _add(table: str, length: int, fmt: str) -> str:
    values = ", ".join([*_key_values("new", length, fmt), *_sum_values("new")])
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in SUMS)
    return (
        f"INSERT INTO {table} ({', '.join((*KEY, *SUMS))}) VALUES ({values}) "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {updates};"
    )


def _remove(table: str, length: int, fmt: str) -> str:
    where = " AND ".join(
        f"{col} = {value}" for col, value in zip(KEY, _key_values("old", length, fmt), strict=True)
    )
    sets = ", ".join(f"{c} = {c} - {v}" for c, v in zip(SUMS, _sum_values("old"), strict=True))
    return (
        f"UPDATE {table} SET {sets} WHERE {where}; "
        f"DELETE FROM {table} WHERE {where} AND requests = 0;"
    )


def _fill(table: str, length: int, fmt: str) -> str:
    key = _key_values("", length, fmt)
    return (
        f"INSERT INTO {table} ({', '.join((*KEY, *SUMS))}) "
        f"SELECT {', '.join(key)}, count(*), coalesce(sum(prompt_tokens), 0), "
        "coalesce(sum(response_tokens), 0), coalesce(sum(total_tokens), 0), "
        "coalesce(sum(latency_ms), 0), count(latency_ms), coalesce(sum(ttft_ms), 0), "
        f"count(ttft_ms) FROM ai_usage_logs GROUP BY {', '.join(str(i + 1) for i in range(5))}"
    )


# What the rollup depends on: an UPDATE of anything else leaves it as it is.
_ROLLED_UP = (
    "created_at, model_identifier, route, status, prompt_tokens, response_tokens, "
    "total_tokens, latency_ms, ttft_ms"
)


def _rollup_upgrade() -> None:
    for table in LEVELS:
        op.create_table(
            table,
            *(sa.Column(c, sa.String(), nullable=False) for c in KEY),
            *(sa.Column(c, sa.Integer(), nullable=False) for c in SUMS),
            sa.PrimaryKeyConstraint(*KEY, name=f"pk_{table}"),
            sqlite_with_rowid=False,
        )
    adds = " ".join(_add(t, n, f) for t, (n, f) in LEVELS.items())
    removes = " ".join(_remove(t, n, f) for t, (n, f) in LEVELS.items())
    op.execute(f"CREATE TRIGGER usage_rollup_ai AFTER INSERT ON ai_usage_logs BEGIN {adds} END")
    op.execute(f"CREATE TRIGGER usage_rollup_ad AFTER DELETE ON ai_usage_logs BEGIN {removes} END")
    op.execute(
        f"CREATE TRIGGER usage_rollup_au AFTER UPDATE OF {_ROLLED_UP} ON ai_usage_logs "
        f"BEGIN {removes} {adds} END"
    )
    for table, (length, fmt) in LEVELS.items():
        op.execute(_fill(table, length, fmt))


def _rollup_downgrade() -> None:
    for trigger in ("usage_rollup_ai", "usage_rollup_ad", "usage_rollup_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for table in LEVELS:
        op.drop_table(table)


def _has_messages_fts() -> bool:
    found = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
        )
        .first()
    )
    return found is not None


def _messages_fts(options: str) -> None:
    """(Re)create ``messages_fts`` with ``options``, its triggers, and index every message."""
    for suffix in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{suffix}")
    op.execute("DROP TABLE IF EXISTS messages_fts")
    op.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', "
        f"content_rowid='id', tokenize='trigram'{options})"
    )
    op.execute(
        "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
        "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END"
    )
    op.execute(
        "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, content) "
        "VALUES ('delete', old.id, old.content); END"
    )
    # Only when the text changes: streaming replies and updated_at touches rewrite rows
    # often, and re-indexing an unchanged text is wasted work.
    op.execute(
        "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, content) "
        "VALUES ('delete', old.id, old.content); "
        "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END"
    )
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def upgrade() -> None:
    _rollup_upgrade()
    if _has_messages_fts():  # this SQLite has FTS5 and its trigram tokenizer (0002)
        _messages_fts(", detail=none, columnsize=0")


def downgrade() -> None:
    if _has_messages_fts():
        _messages_fts("")
    _rollup_downgrade()

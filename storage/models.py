"""The tables: conversations, their messages, and the local ``ai_usage_logs`` mirror.

The schema itself is owned by the Alembic migrations in ``storage/migrations``; these
SQLAlchemy Core tables describe it for queries (and for ``alembic revision
--autogenerate``, through ``metadata``). Core, not the ORM: storage reads and writes plain
rows, and ``sqlalchemy.orm`` alone would add ~60 ms to every start.
``ai_usage_logs`` keeps the halext server's column names and types (halext-api.md §8) so
rows can be compared or exported side by side, plus what only the desktop knows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
    text,
)
from sqlalchemy.engine import Dialect

from halext_desktop.storage.row_values import (  # noqa: F401 (re-exported: the tables' values)
    LIVE_STATUSES,
    MESSAGE_ROLES,
    MESSAGE_STATUSES,
    naive_utc,
    utcnow,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC text (SQLite has no time zones), returned as aware UTC.

    Naive values coming in are taken to be UTC already; aware ones are converted.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# A local chat: a title and the model reference new replies go to. AUTOINCREMENT: ids are
# never reused, so Undo can put a deleted chat back with its ids.
conversations = Table(
    "conversations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String, nullable=False, default="New chat"),
    Column("default_model_id", String, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    # Indexed: the sidebar lists conversations newest-updated first.
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow, index=True),
    sqlite_autoincrement=True,
)

# One message of a conversation. ``meta`` is JSON text with the reply chip's details
# (ttft_ms, latency_ms, tokens, tokens_exact, locality, notes).
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", String, nullable=False),
    Column("content", Text, nullable=False, default=""),
    Column("status", String, nullable=False, default="ok"),
    Column("model_ref", String, nullable=True),
    Column("requested_model", String, nullable=True),
    Column("error", Text, nullable=True),
    Column("meta", Text, nullable=False, default="{}"),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    # The app session writing a reply in flight (``storage.session``): recovery leaves the
    # rows of sessions still running alone.
    Column("writer", String, nullable=True),
    Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    # Tiny (only replies in flight): what start-up crash recovery scans.
    Index(
        "ix_messages_live",
        "status",
        sqlite_where=text("status IN ('pending', 'streaming')"),
    ),
    sqlite_autoincrement=True,
)

# One routed request, whatever its outcome (the halext server's columns first).
usage_logs = Table(
    "ai_usage_logs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, nullable=True, index=True),
    # No FK: a usage row outlives the conversation it belonged to (deleting a chat keeps stats).
    Column("conversation_id", Integer, nullable=True, index=True),
    Column("model_identifier", String, nullable=False, index=True),
    Column("endpoint", String, nullable=False),
    Column("prompt_tokens", Integer, nullable=True, default=0, server_default="0"),
    Column("response_tokens", Integer, nullable=True, default=0, server_default="0"),
    Column("total_tokens", Integer, nullable=True, default=0, server_default="0"),
    Column("latency_ms", Integer, nullable=True),
    # Nullable like the server's column; we always write it (UTC).
    Column(
        "created_at",
        UTCDateTime,
        nullable=True,
        default=utcnow,
        server_default=func.current_timestamp(),
        index=True,
    ),
    # desktop extras
    Column("route", String, nullable=False, default="", server_default=""),
    Column("requested_model", String, nullable=False, default="", server_default=""),
    Column("status", String, nullable=False, default="ok", server_default="ok"),
    Column("error", Text, nullable=True),
    Column("ttft_ms", Integer, nullable=True),
    Column("tokens_exact", Boolean, nullable=False, default=False, server_default="0"),
    # The chat reply this request produced, when it was one (no FK, like conversation_id):
    # crash recovery writes an ``interrupted`` row only for replies that have none.
    Column("message_id", Integer, nullable=True, index=True),
    Index("ix_ai_usage_logs_created_model_status", "created_at", "model_identifier", "status"),
)

# Spool batches already written (``storage.spool``): a batch found again after a crash
# between its commit and the removal of its file is not written twice.
spool_applied = Table(
    "spool_applied",
    metadata,
    Column("id", String, primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False, default=utcnow),
)


def _rollup(name: str) -> Table:
    """One level of the usage rollup (migration 0004): per period (the first 13, 10 or 7
    characters of ``created_at``), time bucket, model, route and status, the number of
    requests and the sums the reports need. Kept exact by triggers on ``ai_usage_logs``."""
    return Table(
        name,
        metadata,
        Column("period", String, primary_key=True),
        Column("bucket", String, primary_key=True),
        Column("model_identifier", String, primary_key=True),
        Column("route", String, primary_key=True),
        Column("status", String, primary_key=True),
        Column("requests", Integer, nullable=False),
        Column("prompt_tokens", Integer, nullable=False),
        Column("response_tokens", Integer, nullable=False),
        Column("total_tokens", Integer, nullable=False),
        Column("latency_sum", Integer, nullable=False),  # over rows that have a latency
        Column("latency_n", Integer, nullable=False),
        Column("ttft_sum", Integer, nullable=False),  # over rows that have a first token
        Column("ttft_n", Integer, nullable=False),
        sqlite_with_rowid=False,
    )


usage_hourly = _rollup("usage_hourly")
usage_daily = _rollup("usage_daily")
usage_monthly = _rollup("usage_monthly")

# A conversation's system prompt and parameters (JSON, ``storage.chat_settings``;
# migration 0005), deleted with its conversation.
conversation_settings = Table(
    "conversation_settings",
    metadata,
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("data", Text, nullable=False, default="{}", server_default="{}"),
)

# System prompts and parameters saved by the user under a name.
chat_presets = Table(
    "chat_presets",
    metadata,
    Column("name", String, primary_key=True),
    Column("data", Text, nullable=False, default="{}", server_default="{}"),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
)

# The bytes of attached files, once per content: messages name them by ``sha256`` in
# their ``meta["attachments"]`` (``storage.attachments``).
attachments = Table(
    "attachments",
    metadata,
    Column("sha256", String, primary_key=True),
    Column("mime", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)

"""SQLAlchemy models: conversations, their messages, and the local ``ai_usage_logs`` mirror.

The schema itself is owned by the Alembic migrations in ``storage/migrations``; these
classes describe it for queries (and for ``alembic revision --autogenerate``).
``ai_usage_logs`` keeps the halext server's column names and types (halext-api.md §8) so
rows can be compared or exported side by side, plus what only the desktop knows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MESSAGE_ROLES = ("user", "assistant", "system")
# "placeholder": halext's mock text stood in for a model that did not work (shown with a
# warning, never sent back as history).
MESSAGE_STATUSES = (
    "ok",
    "pending",
    "streaming",
    "stopped",
    "error",
    "blocked",
    "placeholder",
    "interrupted",  # the app stopped (crash, kill, shutdown) before the reply ended
)
# Replies still being written by some process: the rows crash recovery looks at.
LIVE_STATUSES = ("pending", "streaming")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC text (SQLite has no time zones), returned as aware UTC.

    Naive values coming in are taken to be UTC already; aware ones are converted.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    """A local chat: a title and the model reference new replies go to."""

    __tablename__ = "conversations"
    # AUTOINCREMENT: ids are never reused, so Undo can put a deleted chat back with its ids.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String, nullable=False, default="New chat")
    default_model_id: Mapped[str | None] = mapped_column(String, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # Indexed: the sidebar lists conversations newest-updated first.
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, index=True
    )


class Message(Base):
    """One message of a conversation. ``meta`` is JSON text with the reply chip's details
    (ttft_ms, latency_ms, tokens, tokens_exact, locality, notes)."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        # Tiny (only replies in flight): what start-up crash recovery scans.
        Index(
            "ix_messages_live",
            "status",
            sqlite_where=text("status IN ('pending', 'streaming')"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String, nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String, nullable=False, default="ok")
    model_ref: Mapped[str | None] = mapped_column(String, nullable=True)
    requested_model: Mapped[str | None] = mapped_column(String, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # The app session writing a reply in flight (``storage.session``): recovery leaves the
    # rows of sessions still running alone.
    writer: Mapped[str | None] = mapped_column(String, nullable=True)


class UsageLog(Base):
    """One routed request, whatever its outcome (the halext server's columns first)."""

    __tablename__ = "ai_usage_logs"
    __table_args__ = (
        Index("ix_ai_usage_logs_created_model_status", "created_at", "model_identifier", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # No FK: a usage row outlives the conversation it belonged to (deleting a chat keeps stats).
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    model_identifier: Mapped[str] = mapped_column(String, nullable=False, index=True)
    endpoint: Mapped[str] = mapped_column(String, nullable=False)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=0, server_default="0")
    response_tokens: Mapped[int | None] = mapped_column(Integer, default=0, server_default="0")
    total_tokens: Mapped[int | None] = mapped_column(Integer, default=0, server_default="0")
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Nullable like the server's column; we always write it (UTC).
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        nullable=True,
        default=utcnow,
        server_default=func.current_timestamp(),
        index=True,
    )
    # desktop extras
    route: Mapped[str] = mapped_column(String, nullable=False, default="", server_default="")
    requested_model: Mapped[str] = mapped_column(
        String, nullable=False, default="", server_default=""
    )
    status: Mapped[str] = mapped_column(String, nullable=False, default="ok", server_default="ok")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    ttft_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_exact: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default="0"
    )
    # The chat reply this request produced, when it was one (no FK, like conversation_id):
    # crash recovery writes an ``interrupted`` row only for replies that have none.
    message_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)


class SpoolApplied(Base):
    """Spool batches already written (``storage.spool``): a batch found again after a crash
    between its commit and the removal of its file is not written twice."""

    __tablename__ = "spool_applied"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class ConversationSettings(Base):
    """A conversation's system prompt and parameters (JSON, ``storage.chat_settings``)."""

    __tablename__ = "conversation_settings"

    conversation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[str] = mapped_column(Text, nullable=False, default="{}", server_default="{}")


class ChatPreset(Base):
    """A system prompt and parameters saved by the user under a name."""

    __tablename__ = "chat_presets"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    data: Mapped[str] = mapped_column(Text, nullable=False, default="{}", server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class Attachment(Base):
    """The bytes of an attached file, once per content (messages name it by ``sha256``)."""

    __tablename__ = "attachments"

    sha256: Mapped[str] = mapped_column(String, primary_key=True)
    mime: Mapped[str] = mapped_column(String, nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

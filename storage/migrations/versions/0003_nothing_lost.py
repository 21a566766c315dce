"""Nothing lost: who is writing a reply, which reply a usage row belongs to, spool batches.

- ``messages.writer``: the app session (``storage.session``) writing a reply that is still
  ``pending``/``streaming``. Start-up recovery marks the live rows of sessions that are gone
  ``interrupted`` and leaves those of running sessions alone.
- ``ix_messages_live``: a partial index over just those live rows, so recovery reads a
  handful of index entries instead of every message.
- ``ai_usage_logs.message_id``: the reply a chat request produced; recovery writes an
  ``interrupted`` usage row only for a reply that has none.
- ``spool_applied``: ids of spool batches (rows kept in a file while the database refused
  them) already written, so a batch is never written twice.

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): nullable columns without defaults are cheap in SQLite
    # and leave the FTS triggers on ``messages`` untouched.
    op.add_column("messages", sa.Column("writer", sa.String(), nullable=True))
    op.create_index(
        "ix_messages_live",
        "messages",
        ["status"],
        sqlite_where=sa.text("status IN ('pending', 'streaming')"),
    )
    op.add_column("ai_usage_logs", sa.Column("message_id", sa.Integer(), nullable=True))
    op.create_index("ix_ai_usage_logs_message_id", "ai_usage_logs", ["message_id"])
    op.create_table(
        "spool_applied",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("spool_applied")
    op.drop_index("ix_ai_usage_logs_message_id", "ai_usage_logs")
    op.drop_index("ix_messages_live", "messages")
    with op.batch_alter_table("ai_usage_logs") as batch:
        batch.drop_column("message_id")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("writer")

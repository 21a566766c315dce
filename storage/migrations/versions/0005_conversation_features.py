"""Conversation features: per-conversation system prompt and parameters, presets,
attachments.

- ``conversation_settings``: one row per conversation that has a system prompt or
  parameters (JSON), deleted with its conversation.
- ``chat_presets``: system prompt and parameters the user saved under a name.
- ``attachments``: the bytes of files attached to messages, stored once by SHA-256
  (messages reference them from their ``meta``; two messages with the same file share it).

Reply versions need no table: earlier answers live in the reply's ``meta`` (``versions``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation_settings",
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("data", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_table(
        "chat_presets",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("data", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "attachments",
        sa.Column("sha256", sa.String(), primary_key=True),
        sa.Column("mime", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("attachments")
    op.drop_table("chat_presets")
    op.drop_table("conversation_settings")

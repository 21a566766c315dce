"""Start-up recovery of replies a crash left mid-way.

A reply is stored as ``pending`` before anything is sent and ``streaming`` while text
arrives (saved at least once a second). If the process dies (kill -9, a crash, power loss)
the row stays that way. At the next start of the window or of any command that opens the
database, rows whose writing session is gone (``storage.session``) become ``interrupted``,
their text kept, and the request gets its usage row (status ``interrupted``) if it has
none — one row per request, whatever happened.

Recovery is one change in the owner's queue, queued after the spool files read back at
start-up: it looks inside the write transaction, after those changes are applied, so a
reply that was only in a spool file is recovered at the same start, and two processes
starting together never recover a reply twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.db import Database
from halext_desktop.storage.row_values import LIVE_STATUSES
from halext_desktop.storage.usage import UsageLog

log = logging.getLogger(__name__)

# What the router logs as each route kind's chat endpoint (routing/router.py).
ENDPOINTS = {"halext": "/ai/chat/stream", "ollama": "/api/chat", "openai": "/chat/completions"}
INTERRUPTED_ERROR = "The app stopped before the reply finished; the partial reply is kept"


def live_replies(db: Database) -> list[tuple[int, str | None]]:
    """``(message id, writer session)`` of every reply still marked in flight."""
    # The statuses written out, as in the partial index ``ix_messages_live``: SQLite uses a
    # partial index only when the query's WHERE implies the index's, which bound
    # parameters never do (``IN (?, ?)`` read every message: ~0.3 s at a million).
    with db.read() as conn:
        rows = conn.sql(_LIVE_SQL).fetchall()
    return [(int(r[0]), r[1]) for r in rows]


_LIVE_SQL = "SELECT id, writer FROM messages WHERE status IN ({})".format(
    ", ".join(f"'{s}'" for s in LIVE_STATUSES)
)


def _parse(text: str | None) -> ModelRef | None:
    if not text:
        return None
    try:
        return ModelRef.parse(text)
    except ModelRefError:
        return None


def _latency_ms(meta: dict[str, Any], created_at: datetime) -> int | None:
    saved = meta.get("saved_at")
    if not isinstance(saved, str):
        return None
    try:
        last = datetime.fromisoformat(saved)
    except ValueError:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return max(0, int((last - created_at).total_seconds() * 1000))


def recover_reply(
    conversations: ConversationStore,
    usage: UsageLog,
    message_id: int,
    alive: Callable[[str | None], bool],
) -> bool:
    """Mark one reply ``interrupted`` (text kept) and give its request a usage row if it has
    none. Looks again first: False when the reply finished or its writer runs after all.
    Runs inside the owner's write transaction."""
    row = conversations.get_message(message_id)
    if row is None or row.status not in LIVE_STATUSES:
        return False
    with conversations.db.read() as conn:
        found = conn.sql("SELECT writer FROM messages WHERE id = ?", (message_id,)).fetchone()
    writer = found[0] if found is not None else None
    if alive(writer):
        return False
    conversations.edit_message(
        message_id,
        status="interrupted",
        clear_writer=True,
        meta_patch={"interrupted_at": datetime.now(UTC).isoformat()},
    )
    if not usage.has_row_for_message(message_id):
        asked = _parse(row.requested_model)
        answered = _parse(row.model_ref) or asked
        prompt = ""
        for m in reversed(
            conversations.messages(row.conversation_id, before_id=message_id, limit=1)
        ):
            if m.role == "user":
                prompt = m.content
        usage.insert(
            UsageRecord(
                model_identifier=str(answered) if answered else (row.requested_model or "?"),
                endpoint=ENDPOINTS.get(answered.kind if answered else "", ""),
                prompt_tokens=len(prompt) // 4,
                response_tokens=len(row.content) // 4,
                latency_ms=_latency_ms(row.meta, row.created_at),
                created_at=row.created_at,
                conversation_id=row.conversation_id,
                route=answered.route_id if answered else "",
                requested_model=row.requested_model or "",
                status=UsageStatus.INTERRUPTED,
                error=INTERRUPTED_ERROR,
                tokens_exact=False,
            ),
            message_id=message_id,
        )
    log.info("reply %d was left mid-way by a session that is gone: now interrupted", message_id)
    return True


def recover_all(
    conversations: ConversationStore, usage: UsageLog, alive: Callable[[str | None], bool]
) -> list[int]:
    """Recover every reply left in flight by a session that is gone; returns their ids."""
    done = []
    for message_id, writer in live_replies(conversations.db):
        if not alive(writer) and recover_reply(conversations, usage, message_id, alive):
            done.append(message_id)
    return done

"""The chat replies this process is writing right now.

``Turns`` registers each reply while it streams; the usage sink (``storage.store``) looks the
request's conversation up here to tie the usage row to its reply (``message_id``), and
shutdown uses it to stop every reply in flight and save it as ``interrupted``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

STOP_INTERRUPTED = "interrupted"  # the app is shutting down (SIGTERM, SIGHUP, window closed)
STOP_TOO_LARGE = "too_large"  # the reply passed the size limit


@dataclass
class ActiveReply:
    """One reply in flight.

    Attributes:
        conversation_id: its conversation (the id the router's usage row carries).
        message_id: its message (may be provisional).
        cancel: stops the request (a ``routing.router.CancelToken``).
        stop_reason: why it was stopped by the app rather than the user, if it was.
        finished: set once its final state has been queued for the database.
    """

    conversation_id: int
    message_id: int
    cancel: Any
    stop_reason: str | None = None
    final_queued: bool = False  # its final state is queued for the database
    finished: threading.Event = field(default_factory=threading.Event)

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.cancel.cancel()


class ActiveReplies:
    """Replies in flight, by conversation (one at a time per conversation in a process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_conversation: dict[int, ActiveReply] = {}

    def begin(self, conversation_id: int, message_id: int, cancel: Any) -> ActiveReply:
        reply = ActiveReply(conversation_id, message_id, cancel)
        with self._lock:
            self._by_conversation[conversation_id] = reply
        return reply

    def rekey(self, reply: ActiveReply, conversation_id: int) -> None:
        """The conversation got its real id (it was written): file the reply under it."""
        with self._lock:
            if self._by_conversation.get(reply.conversation_id) is reply:
                del self._by_conversation[reply.conversation_id]
            reply.conversation_id = conversation_id
            self._by_conversation[conversation_id] = reply

    def end(self, reply: ActiveReply) -> None:
        reply.finished.set()
        with self._lock:
            if self._by_conversation.get(reply.conversation_id) is reply:
                del self._by_conversation[reply.conversation_id]

    def lookup(self, conversation_id: int | None) -> ActiveReply | None:
        if conversation_id is None:
            return None
        with self._lock:
            return self._by_conversation.get(conversation_id)

    def all(self) -> list[ActiveReply]:
        with self._lock:
            return list(self._by_conversation.values())

    def interrupt_all(self) -> list[ActiveReply]:
        """Stop every reply in flight as ``interrupted`` (the app is going away); returns
        them, to wait on ``finished``."""
        replies = self.all()
        for reply in replies:
            reply.stop(STOP_INTERRUPTED)
        return replies

"""One chat turn from the user's point of view: store, route, persist — no Qt.

The user's message is written before anything goes out; the assistant's row is created
as ``pending`` and updated as text arrives, so a crash, a dropped stream or Stop never
loses what was typed or what was already received. The CLI and the GUI both use this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from halext_desktop.routing.errors import ErrorKind
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.router import CancelToken, Router
from halext_desktop.routing.types import (
    Cancelled,
    ChatMessage,
    ChatOptions,
    ChatRequest,
    Delta,
    Failed,
    Finished,
    RouterEvent,
    Started,
)
from halext_desktop.storage.conversations import ConversationStore, MessageRow

log = logging.getLogger(__name__)

# Save streamed text at most this often (seconds): bounded loss on a crash, few writes.
PARTIAL_SAVE_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class TurnBegun:
    """The user's message is stored and the assistant's row exists (status pending)."""

    user: MessageRow
    assistant: MessageRow


@dataclass(frozen=True, slots=True)
class TurnSaved:
    """The terminal state of the assistant's row as stored."""

    assistant: MessageRow
    event: RouterEvent  # the router's terminal event (Finished / Failed / Cancelled)


TurnEvent = TurnBegun | TurnSaved | RouterEvent

_STATUS = {Finished: "ok", Cancelled: "stopped"}
# A placeholder reply keeps its own status: it is shown, but never sent back as history.
_FAILED_STATUS = {ErrorKind.BLOCKED: "blocked", ErrorKind.PLACEHOLDER: "placeholder"}


def _meta_for(event: RouterEvent, started: Started | None) -> dict[str, Any]:
    usage = getattr(event, "usage", None)
    notes = list(getattr(event, "notes", ()) or (started.notes if started else ()))
    meta: dict[str, Any] = {"notes": notes}
    if started is not None:
        meta["locality"] = started.locality.value
        meta["answered_model"] = started.answered_model
    if isinstance(event, Failed):
        # What the chip says for a reply no model gave: why nothing was sent, or which
        # route failed (never the asked model, as if it had answered).
        meta["failure_kind"] = event.error.kind.value
        if event.error.route_id:
            meta["failed_route"] = event.error.route_id
        if event.not_sent:
            meta["not_sent"] = event.not_sent
    if usage is not None:
        meta["usage_status"] = usage.status.value
    failed_bare = isinstance(event, Failed) and not event.partial_text
    if usage is not None and not (isinstance(event, Failed) and event.not_sent):
        # Nothing was sent: no timing, no tokens to show. Nothing came back: no tokens.
        meta.update(ttft_ms=usage.ttft_ms, latency_ms=usage.latency_ms)
        if not failed_bare:
            meta.update(
                prompt_tokens=usage.prompt_tokens,
                response_tokens=usage.response_tokens,
                tokens_exact=usage.tokens_exact,
            )
    return meta


class Turns:
    """Runs chat turns against a Router and a ConversationStore."""

    def __init__(
        self,
        router: Router,
        conversations: ConversationStore,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._router = router
        self._store = conversations
        self._clock = clock

    async def send(
        self,
        conversation_id: int,
        prompt: str,
        ref: ModelRef,
        *,
        cancel: CancelToken | None = None,
        endpoint_name: str = "chat",
        options: ChatOptions | None = None,
        use_fallbacks: bool = True,
    ) -> AsyncIterator[TurnEvent]:
        """Store ``prompt`` as a new user message and stream the reply from ``ref``."""
        history = self._store.history(conversation_id)
        user = self._store.add_message(conversation_id, "user", prompt)
        async for event in self._run(
            conversation_id, user, history, ref, cancel, endpoint_name, options, use_fallbacks
        ):
            yield event

    async def regenerate(
        self, conversation_id: int, ref: ModelRef, *, cancel: CancelToken | None = None
    ) -> AsyncIterator[TurnEvent]:
        """Replace the last reply, answering the last user message again with ``ref`` (the
        model selected now, not the one that answered before)."""
        rows = self._store.messages(conversation_id, limit=50)
        last_user = next((m for m in reversed(rows) if m.role == "user"), None)
        if last_user is None:
            raise ValueError("There is no message to answer again")
        later = [m for m in rows if m.id > last_user.id]
        if later:
            self._store.delete_messages_from(conversation_id, later[0].id)
        history = self._store.history(conversation_id, before_message_id=last_user.id)
        async for event in self._run(
            conversation_id, last_user, history, ref, cancel, "chat", None
        ):
            yield event

    async def edit_and_resend(
        self,
        conversation_id: int,
        message_id: int,
        new_text: str,
        ref: ModelRef,
        *,
        cancel: CancelToken | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """Drop ``message_id`` and everything after it, then send ``new_text`` in its place."""
        history = self._store.history(conversation_id, before_message_id=message_id)
        self._store.delete_messages_from(conversation_id, message_id)
        user = self._store.add_message(conversation_id, "user", new_text)
        async for event in self._run(conversation_id, user, history, ref, cancel, "chat", None):
            yield event

    async def _run(
        self,
        conversation_id: int,
        user: MessageRow,
        history: list[ChatMessage],
        ref: ModelRef,
        cancel: CancelToken | None,
        endpoint_name: str,
        options: ChatOptions | None,
        use_fallbacks: bool = True,
    ) -> AsyncIterator[TurnEvent]:
        self._store.set_default_model(conversation_id, str(ref))
        assistant = self._store.add_message(
            conversation_id, "assistant", "", status="pending", requested_model=str(ref)
        )
        yield TurnBegun(user, assistant)
        request = ChatRequest(
            ref=ref,
            messages=(*history, ChatMessage("user", user.content)),
            conversation_id=conversation_id,
            endpoint_name=endpoint_name,
            options=options or ChatOptions(),
            use_fallbacks=use_fallbacks,
        )
        parts: list[str] = []
        started: Started | None = None
        last_save = self._clock()
        async for event in self._router.stream(request, cancel):
            if isinstance(event, Started):
                started = event
                self._store.update_message(
                    assistant.id,
                    status="streaming",
                    model_ref=str(event.answered),
                    meta=_meta_for(event, event),
                )
                yield event
            elif isinstance(event, Delta):
                parts.append(event.text)
                now = self._clock()
                if now - last_save >= PARTIAL_SAVE_INTERVAL:
                    last_save = now
                    try:
                        self._store.update_message(assistant.id, content="".join(parts))
                    except Exception:
                        # A crash guard only (e.g. another process holds the database
                        # lock): the reply keeps streaming and the final save stores it all.
                        log.warning("could not save the partial reply yet", exc_info=True)
                yield event
            else:
                text = event.text if isinstance(event, Finished) else event.partial_text
                answered = event.answered or (started.answered if started else None)
                status = _STATUS.get(type(event), "error")
                error = None
                if isinstance(event, Failed):
                    status = _FAILED_STATUS.get(event.error.kind, "error")
                    error = event.error.one_line()
                saved = self._store.update_message(
                    assistant.id,
                    content=text,
                    status=status,
                    model_ref=str(answered) if answered else None,
                    error=error,
                    meta=_meta_for(event, started),
                )
                yield event
                yield TurnSaved(saved, event)

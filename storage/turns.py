"""One chat turn from the user's point of view: store, route, persist — no Qt.

The user's message and the assistant's ``pending`` row are queued for the database before
anything goes out (with a new conversation, when there is none yet), in one transaction.
The reply then streams at the server's pace: nothing here waits for SQLite. While text
arrives, the partial reply is saved at least once a second of wall time (also during a
stall, when no token comes), so a crash loses at most the last second; the final state is
queued the moment the router's terminal event comes. A database locked by another program
delays those writes, never the reply (``storage.owner``).

Replies in flight are registered (``storage.replies``): the usage row is tied to its reply,
and shutting down (SIGTERM, SIGHUP, closing the window) stops them and saves each as
``interrupted`` with its text. A reply longer than the size limit is ended there, its first
part kept, with a message that says so. The CLI and the GUI both use this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from halext_desktop.routing.errors import ErrorKind, RouteError
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
    ImagePart,
    RouterEvent,
    Started,
)
from halext_desktop.storage import versions
from halext_desktop.storage.attachments import (
    MAX_ATTACHMENTS,
    AttachmentError,
    AttachmentRef,
    Prepared,
    inline_text,
    refs_of,
)
from halext_desktop.storage.chat_settings import ChatSettings
from halext_desktop.storage.chats import Conversations
from halext_desktop.storage.conversations import (
    ConversationRow,
    HistoryWindow,
    MessageRow,
    estimate_tokens,
)
from halext_desktop.storage.db import DatabaseError
from halext_desktop.storage.replies import STOP_INTERRUPTED, STOP_TOO_LARGE, ActiveReplies

log = logging.getLogger(__name__)

# Save streamed text at least this often (wall-clock seconds): bounded loss on a crash.
PARTIAL_SAVE_INTERVAL = 1.0
DEFAULT_MAX_REPLY_BYTES = 32 * 1024 * 1024
# The turn's first rows (conversation, the user's message, the default model) wait for the
# assistant's pending row, queued right after, to be written in one transaction with it.
FIRST_ROWS_WAIT_S = 1.0

# The history sent with a prompt is bounded by what the model takes in.
# Every model takes at least this many tokens: a chat that fits needs no question asked.
FLOOR_CONTEXT = 2048
# When the route cannot tell (halext, OpenAI-compatible endpoints, a server that cannot be
# asked): a context most current models take.
DEFAULT_CONTEXT = 8192
# Room kept for the reply: a quarter of the context, at most this many tokens.
REPLY_RESERVE = 2048
# Images of earlier turns sent again with the history (a vision model), newest first.
MAX_HISTORY_IMAGES = 4


def history_budget(context: int, prompt: str) -> int:
    """Tokens the history may take in a model of ``context`` tokens, with room for the
    prompt and the reply."""
    reserve = min(context // 4, REPLY_RESERVE)
    return max(context - reserve - estimate_tokens(prompt), 0)


@dataclass(frozen=True, slots=True)
class TurnBegun:
    """The user's message and the assistant's row are queued (status pending).

    ``conversation`` is the new conversation when the turn created one, else None. Ids are
    the real ones once written; while the database refuses writes they are provisional
    (negative) and stay valid for every later call in this process.
    """

    user: MessageRow
    assistant: MessageRow
    conversation: ConversationRow | None = None
    context: HistoryWindow | None = None  # the history sent; None for a new conversation


@dataclass(frozen=True, slots=True)
class TurnUpdated:
    """The assistant's row changed (who answers, the chip's details): show it."""

    assistant: MessageRow


@dataclass(frozen=True, slots=True)
class TurnSaved:
    """The terminal state of the assistant's row.

    Attributes:
        assistant: the row as saved (or as it will be, when ``saved`` is False).
        event: the router's terminal event (Finished / Failed / Cancelled).
        saved: False while the database refuses it (the change waits, and is kept in the
            spool file if the app exits first).
        problem: why it is not saved, for the user (None when saved).
    """

    assistant: MessageRow
    event: RouterEvent
    saved: bool = True
    problem: str | None = None


TurnEvent = TurnBegun | TurnUpdated | TurnSaved | RouterEvent

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
    if isinstance(event, Finished) and event.tokens_per_second is not None:
        # Measured by the route (Ollama's eval_count / eval_duration): the chip's tok/s.
        meta.update(eval_count=event.eval_count, eval_duration_ns=event.eval_duration_ns)
    return meta


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def too_large_message(limit_bytes: int) -> str:
    mb = limit_bytes / (1024 * 1024)
    return (
        f"The reply passed the {mb:g} MB limit and was ended there; the first {mb:g} MB are "
        "kept (change it with the max_reply_mb setting)"
    )


class Turns:
    """Runs chat turns against a Router and the conversations.

    Args:
        router: sends the requests.
        conversations: where turns are stored (through the database owner).
        replies: the registry of replies in flight (shared with the usage sink).
        writer: this process's session id, recorded on replies in flight.
        save_every: seconds between two saves of a streaming reply.
        max_reply_bytes: the size limit of one reply (UTF-8 bytes), read at each turn.
    """

    def __init__(
        self,
        router: Router,
        conversations: Conversations,
        replies: ActiveReplies | None = None,
        *,
        writer: str | None = None,
        save_every: float = PARTIAL_SAVE_INTERVAL,
        max_reply_bytes: Callable[[], int] | int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        self._router = router
        self._chats = conversations
        self._replies = replies or ActiveReplies()
        self._writer = writer
        self._save_every = save_every
        self._limit = max_reply_bytes

    @property
    def replies(self) -> ActiveReplies:
        return self._replies

    def interrupt_all(self) -> list[Any]:
        """Stop every reply in flight as ``interrupted`` (the app is going away); returns
        them (``finished`` is set once each one's final state is queued)."""
        return self._replies.interrupt_all()

    def interrupt(self, cancel: Any) -> bool:
        """Stop the reply in flight that ``cancel`` belongs to as ``interrupted`` (its window
        is closing); False when there is none."""
        for reply in self._replies.all():
            if reply.cancel is cancel:
                reply.stop(STOP_INTERRUPTED)
                return True
        return False

    def _max_bytes(self) -> int:
        return self._limit() if callable(self._limit) else self._limit

    async def send(
        self,
        conversation_id: int | None,
        prompt: str,
        ref: ModelRef,
        *,
        cancel: CancelToken | None = None,
        endpoint_name: str = "chat",
        options: ChatOptions | None = None,
        use_fallbacks: bool = True,
        title: str | None = None,
        attachments: Sequence[Prepared] = (),
        settings: ChatSettings | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """Store ``prompt`` as a new user message and stream the reply from ``ref``.
        ``conversation_id`` None starts a new conversation (titled ``title``, else after
        the prompt).

        Args:
            attachments: files sent with the message: text ones go into it as fenced
                blocks, images go to the model (refused before anything is stored or sent
                when it cannot take them: ``RouteError`` BAD_REQUEST).
            settings: the conversation's system prompt and parameters from now on (kept
                with it, like the window's header); None keeps what it has.
        """
        images = await self.check_attachments(ref, attachments)
        text = inline_text(prompt, attachments)
        conversation: ConversationRow | None = None
        conv_future = None
        window: HistoryWindow | None = None
        if conversation_id is None:
            name = title or " ".join(prompt.split())[:60] or "New chat"
            if not prompt.strip() and attachments:
                name = title or attachments[0].ref.name
            conversation, conv_future = self._chats.queue_conversation(
                name, str(ref), within=FIRST_ROWS_WAIT_S
            )
            cid = conversation.id
            kept = settings or ChatSettings()
        else:
            cid = conversation_id
            # Read before anything of the turn is queued: its rows go to the database
            # together (a read writes what waits).
            kept = settings if settings is not None else await self._chats.chat_settings(cid)
            window = await self._history(cid, ref, _budgeted(kept, text), kept.options(options))
        if settings is not None:
            self._chats.queue_chat_settings(cid, settings, within=FIRST_ROWS_WAIT_S)
        for prepared in attachments:
            self._chats.queue_attachment(prepared, within=FIRST_ROWS_WAIT_S)
        meta = {"attachments": [a.ref.to_dict() for a in attachments]} if attachments else None
        user, user_future = self._chats.queue_message(
            cid, "user", text, meta=meta, within=FIRST_ROWS_WAIT_S
        )
        async for event in self._run(
            cid,
            user,
            window,
            ref,
            cancel,
            endpoint_name,
            options,
            use_fallbacks,
            user_future=user_future,
            conversation=conversation,
            conversation_future=conv_future,
            images=images,
            chat_settings=kept,
        ):
            yield event

    async def check_attachments(
        self, ref: ModelRef, attachments: Sequence[Prepared]
    ) -> tuple[ImagePart, ...]:
        """The images to send with the message; raises a RouteError (BAD_REQUEST, one
        clear line) when ``ref`` cannot take them, before anything is stored or sent."""
        if len(attachments) > MAX_ATTACHMENTS:
            raise AttachmentError(f"at most {MAX_ATTACHMENTS} attachments per message")
        images = tuple(ImagePart(a.ref.mime, a.data) for a in attachments if a.ref.is_image)
        await self.check_images(ref, images)
        return images

    async def check_images(self, ref: ModelRef, images: Sequence[ImagePart]) -> None:
        """Raises RouteError (BAD_REQUEST) when ``ref`` cannot take ``images``."""
        if not images:
            return
        if ref.kind == "halext":
            raise RouteError(
                ErrorKind.BAD_REQUEST,
                f"Not sent: the halext API cannot carry images ({ref.model})",
                "Pick a local vision model, or remove the image",
                route_id=ref.route_id,
            )
        caps = await self._router.capabilities(ref)
        if caps is not None and "vision" not in caps:
            raise RouteError(
                ErrorKind.BAD_REQUEST,
                f"Not sent: {ref.model} cannot take images (it does not list 'vision')",
                "Pick a vision model, or remove the image",
                route_id=ref.route_id,
            )

    async def _with_earlier_images(
        self, window: HistoryWindow | None, ref: ModelRef
    ) -> list[ChatMessage]:
        """The history to send: ``window``'s messages, with the images of its earlier turns
        when ``ref`` is known to take images (a follow-up question is about the picture
        asked about before). The newest ``MAX_HISTORY_IMAGES`` of them: each costs the
        model hundreds of tokens of context and the request its bytes. A model that does
        not say it takes images gets the text alone, as before."""
        if window is None:
            return []
        history = list(window.messages)
        if ref.kind == "halext" or len(window.ids) != len(history):
            return history
        users = [mid for mid, m in zip(window.ids, history, strict=True) if m.role == "user"]
        if not users:
            return history
        metas = await self._chats.metas(users)
        wanted = {mid: [r for r in refs_of(meta) if r.is_image] for mid, meta in metas.items()}
        if not any(wanted.values()):
            return history
        caps = await self._router.capabilities(ref)
        if caps is None or "vision" not in caps:
            return history
        left = MAX_HISTORY_IMAGES
        for i in range(len(history) - 1, -1, -1):  # newest first
            parts = await self._load_images((wanted.get(window.ids[i]) or [])[:left])
            if parts:
                left -= len(parts)
                history[i] = ChatMessage(history[i].role, history[i].content, parts)
            if left <= 0:
                break
        return history

    async def _images_of(self, message: MessageRow) -> tuple[ImagePart, ...]:
        return await self._load_images([r for r in refs_of(message.meta) if r.is_image])

    async def _load_images(self, refs: Sequence[AttachmentRef]) -> tuple[ImagePart, ...]:
        """The stored images ``refs`` name (one no longer stored is left out)."""
        out = []
        for ref in refs:
            found = await self._chats.attachment(ref.sha256)
            if found is not None:
                out.append(ImagePart(found[0], found[1]))
        return tuple(out)

    async def _history(
        self,
        cid: int,
        ref: ModelRef,
        prompt: str,
        options: ChatOptions | None,
        before_message_id: int | None = None,
    ) -> HistoryWindow:
        """The newest turns that fit the model's context with ``prompt`` and room for the
        reply. A chat that fits the smallest context any model takes is sent whole without
        asking anything; a longer one is fitted to the conversation's ``num_ctx``, else the
        model's context length (its route asked once), else ``DEFAULT_CONTEXT``."""
        window = await self._chats.history_window(
            cid, history_budget(FLOOR_CONTEXT, prompt), before_message_id=before_message_id
        )
        if not window.cut:
            return window
        context = options.num_ctx if options is not None and options.num_ctx else None
        if context is None:
            context = await self._router.context_length(ref) or DEFAULT_CONTEXT
        if context <= FLOOR_CONTEXT:
            return window
        return await self._chats.history_window(
            cid, history_budget(context, prompt), before_message_id=before_message_id
        )

    async def regenerate(
        self,
        conversation_id: int,
        ref: ModelRef,
        *,
        cancel: CancelToken | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """Replace the last reply, answering the last user message again with ``ref`` (the
        model selected now, not the one that answered before). ``options``: as ``send``
        takes them; the conversation's settings apply on top (their ``num_ctx`` also bounds
        the history). The earlier answers are kept as versions."""
        rows = await self._chats.messages(conversation_id, limit=50)
        kept = await self._chats.chat_settings(conversation_id)
        last_user = next((m for m in reversed(rows) if m.role == "user"), None)
        if last_user is None:
            raise ValueError("There is no message to answer again")
        images = await self._images_of(last_user)
        await self.check_images(ref, images)
        later = [m for m in rows if _after(m.id, last_user.id)]
        # The earlier answers stay, as versions of the new one (‹ 2/3 ›).
        earlier = versions.for_regenerate(later)
        if later:
            await self._chats.delete_messages_from(conversation_id, later[0].id)
        window = await self._history(
            conversation_id, ref, _budgeted(kept, last_user.content), kept.options(options),
            before_message_id=last_user.id,
        )  # fmt: skip
        async for event in self._run(
            conversation_id, last_user, window, ref, cancel, "chat", options,
            images=images, base_meta=earlier, chat_settings=kept,
        ):  # fmt: skip
            yield event

    async def edit_and_resend(
        self,
        conversation_id: int,
        message_id: int,
        new_text: str,
        ref: ModelRef,
        *,
        cancel: CancelToken | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """Drop ``message_id`` and everything after it, then send ``new_text`` in its place.
        ``options``: as ``send`` takes them; the conversation's settings apply on top (their
        ``num_ctx`` also bounds the history)."""
        kept = await self._chats.chat_settings(conversation_id)
        window = await self._history(
            conversation_id, ref, _budgeted(kept, new_text), kept.options(options),
            before_message_id=message_id,
        )  # fmt: skip
        await self._chats.delete_messages_from(conversation_id, message_id)
        user, user_future = self._chats.queue_message(
            conversation_id, "user", new_text, within=FIRST_ROWS_WAIT_S
        )
        async for event in self._run(
            conversation_id, user, window, ref, cancel, "chat", options, user_future=user_future,
            chat_settings=kept,
        ):  # fmt: skip
            yield event

    async def _run(
        self,
        conversation_id: int,
        user: MessageRow,
        window: HistoryWindow | None,
        ref: ModelRef,
        cancel: CancelToken | None,
        endpoint_name: str,
        options: ChatOptions | None,
        use_fallbacks: bool = True,
        *,
        user_future: Any = None,
        conversation: ConversationRow | None = None,
        conversation_future: Any = None,
        images: tuple[ImagePart, ...] = (),
        base_meta: dict[str, Any] | None = None,
        chat_settings: ChatSettings | None = None,
    ) -> AsyncIterator[TurnEvent]:
        chats, owner = self._chats, self._chats.owner
        cancel = cancel or CancelToken()
        cid = owner.resolve(conversation_id)  # a conversation written since: its real id
        settings = chat_settings or ChatSettings()
        if not settings.empty:
            options = settings.options(options)
        chats.set_default_model(cid, str(ref), within=FIRST_ROWS_WAIT_S)
        # Where the model's context starts, when older turns did not fit (the window shows
        # it; the reply's row keeps it).
        context_meta = (
            {"context_from_id": window.first_id, "context_tokens": window.tokens}
            if window is not None and window.cut
            else {}
        )
        # Written at once, with the rows queued just before it: one transaction.
        assistant, assistant_future = chats.queue_message(
            cid,
            "assistant",
            "",
            status="pending",
            requested_model=str(ref),
            meta={**context_meta, **(base_meta or {})},
            writer=self._writer,
        )
        history = await self._with_earlier_images(window, ref)
        if settings.system:
            history = [ChatMessage("system", settings.system), *history]
        reply = self._replies.begin(cid, assistant.id, cancel)
        try:
            # Normally written in a few milliseconds; while the database refuses writes the
            # rows wait in the queue under provisional ids and the reply goes ahead.
            written = await owner.settled(assistant_future)
        except BaseException:
            self._replies.end(reply)
            raise
        if written:
            real_cid = owner.resolve(cid)
            if real_cid != cid:
                cid = real_cid
                self._replies.rekey(reply, cid)
            assistant = _replace_row(
                assistant, id=int(assistant_future.result()), conversation_id=cid
            )
            reply.message_id = assistant.id
            if user_future is not None and user_future.done() and not user_future.exception():
                user = _replace_row(user, id=int(user_future.result()), conversation_id=cid)
            conv_done = conversation_future is not None and conversation_future.done()
            if conv_done and not conversation_future.exception():
                conversation = conversation_future.result()
        aid = assistant.id
        parts: list[str] = []
        try:
            yield TurnBegun(user, assistant, conversation, window)
            async for out in self._stream(
                cid, user, history, ref, cancel, endpoint_name, options, use_fallbacks,
                reply, assistant, parts, images,
            ):  # fmt: skip
                yield out
        finally:
            if not reply.final_queued:
                # Closed before the router's terminal event (the consumer went away, the
                # loop is shutting down): keep what arrived, and never leave it "pending".
                sent = bool(parts) or reply.stop_reason == STOP_INTERRUPTED
                chats.update_message(
                    aid,
                    content="".join(parts),
                    status="interrupted" if sent else "stopped",
                    clear_writer=True,
                )
            self._replies.end(reply)

    async def _stream(
        self,
        cid: int,
        user: MessageRow,
        history: list[ChatMessage],
        ref: ModelRef,
        cancel: CancelToken,
        endpoint_name: str,
        options: ChatOptions | None,
        use_fallbacks: bool,
        reply: Any,
        assistant: MessageRow,
        parts: list[str],
        images: tuple[ImagePart, ...] = (),
    ) -> AsyncIterator[TurnEvent]:
        chats = self._chats
        aid = assistant.id
        request = ChatRequest(
            ref=ref,
            messages=(*history, ChatMessage("user", user.content, images)),
            conversation_id=cid,
            endpoint_name=endpoint_name,
            options=options or ChatOptions(),
            use_fallbacks=use_fallbacks,
        )
        size = 0
        limit = self._max_bytes()
        truncated = False
        started: Started | None = None
        saved_chars = 0
        chars = 0

        async def save_partial_every_second() -> None:
            nonlocal saved_chars
            while True:
                await asyncio.sleep(self._save_every)
                if chars != saved_chars:
                    saved_chars = chars
                    chats.update_message(
                        aid, content="".join(parts), meta_patch={"saved_at": _now_iso()}
                    )

        saver = asyncio.ensure_future(save_partial_every_second())
        try:
            async for event in self._router.stream(request, cancel):
                if isinstance(event, Started):
                    started = event
                    meta = {**assistant.meta, **_meta_for(event, event)}
                    # Written with the first partial save (or the final state): recovery
                    # treats a pending reply like a streaming one.
                    chats.update_message(
                        aid,
                        status="streaming",
                        model_ref=str(event.answered),
                        meta=meta,
                        within=self._save_every,
                    )
                    yield event
                    yield TurnUpdated(
                        _replace_row(
                            assistant, status="streaming", model_ref=str(event.answered), meta=meta
                        )
                    )
                elif isinstance(event, Delta):
                    if truncated:
                        continue
                    text = event.text
                    size += len(text.encode("utf-8", errors="surrogatepass"))
                    if size > limit:
                        text = _cut_to_bytes(text, len(text.encode("utf-8")) - (size - limit))
                        truncated = True
                        reply.stop(STOP_TOO_LARGE)
                    if text:
                        parts.append(text)
                        chars += len(text)
                        yield Delta(text)
                else:
                    saver.cancel()
                    async for out in self._finish(
                        event, reply, assistant, parts, started, truncated, limit
                    ):
                        yield out
        finally:
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await saver

    async def _finish(
        self,
        event: RouterEvent,
        reply: Any,
        assistant: MessageRow,
        parts: list[str],
        started: Started | None,
        truncated: bool,
        limit: int,
    ) -> AsyncIterator[TurnEvent]:
        chats, owner = self._chats, self._chats.owner
        if isinstance(event, Finished):
            text = event.text
        else:
            assert isinstance(event, Failed | Cancelled)
            text = event.partial_text
        if truncated:
            text = "".join(parts)  # what the user saw: the reply up to the limit
        answered = event.answered or (started.answered if started else None)
        status = _STATUS.get(type(event), "error")
        error = None
        if isinstance(event, Failed):
            status = _FAILED_STATUS.get(event.error.kind, "error")
            error = event.error.one_line()
        elif isinstance(event, Cancelled) and reply.stop_reason == STOP_INTERRUPTED:
            status = "interrupted"
        if truncated:
            # Whatever ended the stream after the cut (our stop, or the server finishing
            # first), the reply is the part up to the limit, and says so.
            status, error = "error", too_large_message(limit)
        meta = {**assistant.meta, **_meta_for(event, started)}
        reply.final_queued = True
        final = chats.update_message(
            assistant.id,
            content=text,
            status=status,
            model_ref=str(answered) if answered else None,
            error=error,
            meta=meta,
            clear_writer=True,
        )
        row = _replace_row(
            assistant,
            content=text,
            status=status,
            model_ref=str(answered) if answered else assistant.model_ref,
            error=error,
            meta=meta,
        )
        yield event
        saved, problem = True, None
        try:
            saved = await owner.settled(final)
        except DatabaseError as exc:
            saved, problem = False, str(exc)
        if not saved and problem is None:
            problem = owner.state.detail or "the database refused the reply for now"
        yield TurnSaved(row, event, saved, problem)


def _budgeted(settings: ChatSettings, prompt: str) -> str:
    """What the history's budget must leave room for besides the turns: the prompt and
    the system prompt sent before them."""
    return f"{settings.system}\n{prompt}" if settings.system else prompt


def _after(a: int, b: int) -> bool:
    """Whether message ``a`` comes after ``b`` (provisional ids are the newest)."""
    ka = (0, a) if a >= 0 else (1, -a)
    kb = (0, b) if b >= 0 else (1, -b)
    return ka > kb


def _replace_row(row: MessageRow, **changes: Any) -> MessageRow:
    import dataclasses

    return dataclasses.replace(row, **changes)


def _cut_to_bytes(text: str, n: int) -> str:
    """The longest start of ``text`` that is at most ``n`` UTF-8 bytes."""
    data = text.encode("utf-8", errors="surrogatepass")[: max(n, 0)]
    return data.decode("utf-8", errors="ignore")

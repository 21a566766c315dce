"""Conversations and messages as the app uses them: every call goes to the database owner.

``Conversations`` is what the window, the CLI and ``Turns`` hold. Its methods are
coroutines (the window runs them through the Bridge, the CLI and Turns await them); each
runs its SQL on the owner thread (``storage.owner``), never on the caller's.

Changes are queued: a new conversation or message gets a provisional id at once and is
written with whatever else is waiting, in one transaction. Reads show the changes still
waiting (the database may be locked by another program for a while: a reply streamed
meanwhile, its conversation and its history must still be there when the user looks, and
the next prompt must be sent with them).
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import ChatMessage
from halext_desktop.storage import versions
from halext_desktop.storage.attachments import AttachmentStore, Prepared
from halext_desktop.storage.chat_settings import ChatSettings, ChatSettingsStore
from halext_desktop.storage.conversations import (
    HISTORY_STATUSES,
    ConversationRow,
    ConversationStore,
    DeletedConversation,
    HistoryWindow,
    MessageRow,
    NotFoundError,
    _check_role,
    _check_status,
    _check_title,
    _ref_text,
    fit_history,
)
from halext_desktop.storage.ops import (
    ApplyContext,
    Call,
    DeleteMessagesFrom,
    EditConversation,
    EditMessage,
    NewConversation,
    NewMessage,
    Op,
    PutAttachment,
    SetChatSettings,
    new_pid,
)
from halext_desktop.storage.owner import DbOwner
from halext_desktop.storage.row_values import utcnow


def _order(mid: int) -> tuple[int, int]:
    """Message order across real ids (written, older) and provisional ones (-1, -2, ...:
    newer than every written row, in the order they were handed out)."""
    return (0, mid) if mid >= 0 else (1, -mid)


class SearchOvertaken(Exception):
    """A search stopped because a newer one started (``Conversations.search``)."""


class _Overlay:
    """The waiting changes, as reads apply them (owner thread)."""

    def __init__(self, owner: DbOwner) -> None:
        self.ops: list[Op] = owner.pending_ops()
        self._resolve = owner.resolve

    def same(self, a: int | None, b: int | None) -> bool:
        if a is None or b is None:
            return False
        return a == b or self._resolve(a) == self._resolve(b)

    def messages(self, cid: int, rows: list[MessageRow]) -> list[MessageRow]:
        """``rows`` (written, oldest first) with the waiting inserts, edits and deletions
        of conversation ``cid`` applied."""
        out = list(rows)
        for op in self.ops:
            if isinstance(op, NewMessage) and self.same(op.conversation_id, cid):
                out.append(_row_of(op, cid))
            elif isinstance(op, EditMessage):
                out = [_edited(r, op) if self.same(r.id, op.message_id) else r for r in out]
            elif isinstance(op, DeleteMessagesFrom) and self.same(op.conversation_id, cid):
                cut = next((i for i, r in enumerate(out) if self.same(r.id, op.message_id)), None)
                if cut is not None:
                    out = out[:cut]
        return out

    def touches(self, cid: int) -> bool:
        for op in self.ops:
            if isinstance(op, NewMessage | DeleteMessagesFrom) and self.same(
                op.conversation_id, cid
            ):
                return True
            if isinstance(op, EditMessage):
                return True  # which conversation it belongs to is not known without a read
        return False

    def conversations(self, rows: list[ConversationRow]) -> list[ConversationRow]:
        out = list(rows)
        for op in self.ops:
            if isinstance(op, NewConversation):
                out.append(
                    ConversationRow(
                        op.pid, op.title, op.default_model_id, op.created_at, op.created_at, 0
                    )
                )
            elif isinstance(op, EditConversation):
                out = [
                    _conv_edited(c, op) if self.same(c.id, op.conversation_id) else c for c in out
                ]
            elif isinstance(op, NewMessage):
                out = [
                    dataclasses.replace(
                        c,
                        message_count=c.message_count + (c.message_count >= 0),
                        updated_at=max(c.updated_at, op.created_at),
                    )
                    if self.same(c.id, op.conversation_id)
                    else c
                    for c in out
                ]
        return out


def _row_of(op: NewMessage, cid: int) -> MessageRow:
    return MessageRow(
        id=op.pid,
        conversation_id=cid,
        role=op.role,
        content=op.content,
        status=op.status,
        model_ref=op.model_ref,
        requested_model=op.requested_model,
        error=op.error,
        meta=dict(op.meta),
        created_at=op.created_at,
    )


def _edited(row: MessageRow, op: EditMessage) -> MessageRow:
    changes: dict[str, Any] = {
        name: getattr(op, name)
        for name in ("content", "status", "model_ref", "error")
        if getattr(op, name) is not None
    }
    if op.meta is not None:
        changes["meta"] = dict(op.meta)
    if op.meta_patch:
        changes["meta"] = {**changes.get("meta", row.meta), **op.meta_patch}
    return dataclasses.replace(row, **changes)


def _conv_edited(row: ConversationRow, op: EditConversation) -> ConversationRow:
    changes: dict[str, Any] = {}
    if op.title is not None:
        changes["title"] = op.title
    if op.set_default:
        changes["default_model_id"] = op.default_model_id
    return dataclasses.replace(row, **changes)


class Conversations:
    """Conversations and messages through the database owner (coroutines; see module doc).

    Args:
        owner: the database owner.
    """

    def __init__(self, owner: DbOwner) -> None:
        self._owner = owner
        self._store: ConversationStore = owner.conversations
        self._search_gen = 0  # the newest search started (older ones stop walking)

    def __repr__(self) -> str:
        return f"Conversations({self._owner!r})"

    @property
    def owner(self) -> DbOwner:
        return self._owner

    def resolve(self, some_id: int) -> int:
        """The real id of a row once written (provisional ids are negative)."""
        return self._owner.resolve(some_id)

    # ---- reads (owner thread) ------------------------------------------------------------

    def _real(self, some_id: int) -> int | None:
        real = self._owner.resolve(some_id)
        return real if real >= 0 else None

    def _list(
        self, limit: int | None, offset: int = 0, counted: bool = True
    ) -> builtins.list[ConversationRow]:
        overlay = _Overlay(self._owner)
        if not overlay.ops:
            return self._store.list(limit, offset=offset, counted=counted)
        rows = overlay.conversations(self._store.list(None, counted=counted))
        rows.sort(key=lambda c: (c.updated_at, _order(c.id)), reverse=True)
        return rows[offset : offset + limit] if limit is not None else rows[offset:]

    def _get(self, cid: int) -> ConversationRow | None:
        real = self._real(cid)
        overlay = _Overlay(self._owner)
        rows = [r for r in [self._store.get(real)] if r is not None] if real is not None else []
        if not overlay.ops:
            return rows[0] if rows else None
        found = [c for c in overlay.conversations(rows) if overlay.same(c.id, cid)]
        return found[0] if found else None

    def _messages(
        self, cid: int, limit: int | None, before_id: int | None
    ) -> builtins.list[MessageRow]:
        real = self._real(cid)
        overlay = _Overlay(self._owner)
        before_real = None if before_id is None else self._owner.resolve(before_id)
        if real is None:
            rows: builtins.list[MessageRow] = []
        elif before_real is not None and before_real < 0:
            rows = self._store.messages(real, limit=limit)  # every written row is older
        else:
            rows = self._store.messages(real, limit=limit, before_id=before_real)
        if not overlay.ops:
            return rows
        rows = overlay.messages(cid, rows)
        if before_id is not None:
            rows = [r for r in rows if _order(self._owner.resolve(r.id)) < _order(before_real or 0)]
        return rows[-limit:] if limit is not None else rows

    def _get_message(self, mid: int) -> MessageRow | None:
        real = self._real(mid)
        row = self._store.get_message(real) if real is not None else None
        overlay = _Overlay(self._owner)
        for op in overlay.ops:
            if isinstance(op, NewMessage) and overlay.same(op.pid, mid):
                row = _row_of(op, op.conversation_id)
            elif (
                isinstance(op, EditMessage) and row is not None and overlay.same(op.message_id, mid)
            ):
                row = _edited(row, op)
        return row

    def _count(self, cid: int) -> int:
        real = self._real(cid)
        n = self._store.count_messages(real) if real is not None else 0
        overlay = _Overlay(self._owner)
        return n + sum(
            1
            for op in overlay.ops
            if isinstance(op, NewMessage) and overlay.same(op.conversation_id, cid)
        )

    def _history(
        self, cid: int, before_message_id: int | None, limit: int | None
    ) -> builtins.list[ChatMessage]:
        overlay = _Overlay(self._owner)
        real = self._real(cid)
        if not overlay.touches(cid) and real is not None:
            before = None if before_message_id is None else self._owner.resolve(before_message_id)
            if before is None or before >= 0:
                return self._store.history(real, before, limit=limit)
        # Changes of this conversation wait: build the dialogue from the rows as they will be.
        rows = self._messages(cid, None, before_message_id)
        turns = [
            ChatMessage(r.role, r.content)  # type: ignore[arg-type]
            for r in rows
            if r.status in HISTORY_STATUSES and r.content.strip(" \t\r\n")
        ]
        return turns[-limit:] if limit is not None else turns

    def _history_window(
        self, cid: int, budget: int, before_message_id: int | None
    ) -> HistoryWindow:
        overlay = _Overlay(self._owner)
        real = self._real(cid)
        if not overlay.touches(cid) and real is not None:
            before = None if before_message_id is None else self._owner.resolve(before_message_id)
            if before is None or before >= 0:
                return self._store.history_window(real, budget, before)
        # Changes of this conversation wait (the database refuses writes): fit the rows as
        # they will be.
        rows = self._messages(cid, None, before_message_id)
        turns = [
            (r.id, r.role, r.content)
            for r in reversed(rows)
            if r.status in HISTORY_STATUSES and r.content.strip(" \t\r\n")
        ]
        return fit_history(turns, budget)

    async def history_window(
        self, conversation_id: int, budget: int, *, before_message_id: int | None = None
    ) -> HistoryWindow:
        """The newest turns of the dialogue that fit ``budget`` estimated tokens (system
        messages always kept), without loading the rest of a long chat; turns still
        waiting to be written included."""
        return await self._owner.run(
            self._history_window, conversation_id, budget, before_message_id
        )

    def _metas(self, message_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        real = {self._owner.resolve(mid): mid for mid in message_ids}
        found = self._store.metas(real)
        return {real[mid]: meta for mid, meta in found.items() if mid in real}

    async def metas(self, message_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The ``meta`` of each of these messages that has one, by the id given (rows
        still waiting to be written have none yet)."""
        return await self._owner.run(self._metas, message_ids)

    async def list(
        self, limit: int | None = None, *, offset: int = 0, counted: bool = True
    ) -> builtins.list[ConversationRow]:
        """Conversations, most recently updated first (waiting ones included); a page of
        ``limit`` after the first ``offset``; ``counted=False``: ``message_count`` is -1
        (the sidebar never shows it, and counting is most of a page's cost)."""
        return await self._owner.run(self._list, limit, offset, counted)

    async def get(self, conversation_id: int) -> ConversationRow | None:
        return await self._owner.run(self._get, conversation_id)

    async def messages(
        self, conversation_id: int, *, limit: int | None = None, before_id: int | None = None
    ) -> builtins.list[MessageRow]:
        """Messages oldest first; with ``limit`` the newest ``limit`` older than
        ``before_id`` (a page for lazy loading)."""
        return await self._owner.run(self._messages, conversation_id, limit, before_id)

    async def page(
        self, conversation_id: int, limit: int, before_id: int | None = None
    ) -> tuple[builtins.list[MessageRow], bool]:
        """A page of messages and whether older ones exist (one trip to the owner)."""

        def read() -> tuple[builtins.list[MessageRow], bool]:
            rows = self._messages(conversation_id, limit, before_id)
            if not rows:
                return rows, False
            older = self._messages(conversation_id, 1, rows[0].id)
            return rows, bool(older)

        return await self._owner.run(read)

    async def count_messages(self, conversation_id: int) -> int:
        return await self._owner.run(self._count, conversation_id)

    async def get_message(self, message_id: int) -> MessageRow | None:
        return await self._owner.run(self._get_message, message_id)

    async def history(
        self,
        conversation_id: int,
        before_message_id: int | None = None,
        *,
        limit: int | None = None,
    ) -> builtins.list[ChatMessage]:
        """The dialogue to send with the next prompt (``ConversationStore.history``),
        including turns still waiting to be written."""
        return await self._owner.run(self._history, conversation_id, before_message_id, limit)

    async def search(
        self, text: str, limit: int = 50
    ) -> builtins.list[tuple[ConversationRow, str | None]]:
        """Conversations whose title or messages contain every word of ``text``, the most
        recent activity first (``ConversationStore.search``).

        The owner walks the messages newest first in slices, one job each, so writes and
        other reads queued meanwhile go between them; a search started later (the user
        typed on) overtakes this one, which then ends with ``SearchOvertaken`` instead of
        walking on for results nobody will show. Cancelling the awaiting task stops it too.
        """
        out: builtins.list[tuple[ConversationRow, str | None]] = []
        async for found, _done in self.search_stream(text, limit, partial=False):
            out = found
        return out

    async def search_stream(
        self, text: str, limit: int = 50, *, partial: bool = True
    ) -> AsyncIterator[tuple[builtins.list[tuple[ConversationRow, str | None]], bool]]:
        """``search``, reporting as it goes: ``(results so far, done)`` after the first
        slice of messages (titles matched, when any are and more is left to walk) and after
        each later slice that found a new conversation, then the final results with
        ``done`` True. A word only titles hold
        shows at once instead of after a walk of every message. Overtaken like
        ``search`` (``SearchOvertaken``)."""
        self._search_gen += 1
        gen = self._search_gen
        search = await self._owner.run(self._store.search_begin, text, limit)
        shown = 0
        if not search.done:
            if gen != self._search_gen:
                raise SearchOvertaken(text)
            # The first slice is small: a short chat list is answered whole, with no
            # partial answer first (no title shown without the snippet that follows).
            await self._owner.run(self._store.search_step, search)
            found = len(search.hits.keys() | search.titles)
            if partial and not search.done and found:
                shown = found
                yield await self._owner.run(self._store.search_results, search), False
        while not search.done:
            if gen != self._search_gen:
                raise SearchOvertaken(text)
            await self._owner.run(self._store.search_step, search)
            found = len(search.hits.keys() | search.titles)
            if partial and not search.done and found > shown:
                shown = found
                yield await self._owner.run(self._store.search_results, search), False
        yield await self._owner.run(self._store.search_results, search), True

    # ---- changes ---------------------------------------------------------------------------

    def queue_conversation(
        self,
        title: str = "New chat",
        default_model_id: ModelRef | str | None = None,
        *,
        within: float = 0.0,
    ) -> tuple[ConversationRow, Future[Any]]:
        """Queue a new conversation: its row (provisional id) and the write's future
        (``within``: see ``DbOwner.enqueue``)."""
        title = _check_title(title)
        ref = _ref_text(default_model_id)
        now = utcnow()
        op = NewConversation(new_pid(), title, ref, now)
        row = ConversationRow(op.pid, title, ref, now, now, 0)
        return row, self._owner.enqueue(op, within=within)

    async def create(
        self, title: str = "New chat", default_model_id: ModelRef | str | None = None
    ) -> ConversationRow:
        """A new, empty conversation (its real id once written; a provisional one while
        the database refuses writes)."""
        row, fut = self.queue_conversation(title, default_model_id)
        if await self._owner.settled(fut):
            written = fut.result()
            assert isinstance(written, ConversationRow)
            return written
        return row

    def queue_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        status: str = "ok",
        model_ref: str | None = None,
        requested_model: str | None = None,
        meta: Mapping[str, Any] | None = None,
        writer: str | None = None,
        created_at: datetime | None = None,
        within: float = 0.0,
    ) -> tuple[MessageRow, Future[Any]]:
        """Queue a new message: its row (provisional id) and the write's future (the real
        id; ``within``: see ``DbOwner.enqueue``)."""
        op = NewMessage(
            new_pid(),
            conversation_id,
            _check_role(role),
            content,
            _check_status(status),
            created_at or utcnow(),
            model_ref,
            requested_model,
            None,
            dict(meta or {}),
            writer,
        )
        return _row_of(op, conversation_id), self._owner.enqueue(op, within=within)

    async def add_message(
        self, conversation_id: int, role: str, content: str, **kwargs: Any
    ) -> MessageRow:
        """Append a message; returns its row (real id once written)."""
        row, fut = self.queue_message(conversation_id, role, content, **kwargs)
        if await self._owner.settled(fut):
            return dataclasses.replace(row, id=int(fut.result()))
        return row

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        status: str | None = None,
        model_ref: str | None = None,
        error: str | None = None,
        meta: Mapping[str, Any] | None = None,
        meta_patch: Mapping[str, Any] | None = None,
        clear_writer: bool = False,
        within: float = 0.0,
    ) -> Future[Any]:
        """Queue a change of a message (None = leave as is); returns the write's future
        (``within``: see ``DbOwner.enqueue``)."""
        return self._owner.enqueue(
            EditMessage(
                message_id,
                content,
                None if status is None else _check_status(status),
                model_ref,
                error,
                None if meta is None else dict(meta),
                None if meta_patch is None else dict(meta_patch),
                None,
                clear_writer,
            ),
            within=within,
        )

    def set_default_model(
        self, conversation_id: int, ref: ModelRef | str | None, *, within: float = 0.0
    ) -> Future[Any]:
        """Queue the model the conversation's next reply goes to (None: the global one).

        Raises:
            ValueError: ``ref`` is not a model reference (at once, nothing is queued).
        """
        return self._owner.enqueue(
            EditConversation(conversation_id, default_model_id=_ref_text(ref), set_default=True),
            within=within,
        )

    async def rename(self, conversation_id: int, title: str) -> None:
        """Change the title (``updated_at`` stays: renaming should not reorder the list).

        Raises:
            ValueError: the title is empty (at once).
            NotFoundError: no such conversation.
        """
        fut = self._owner.enqueue(EditConversation(conversation_id, title=_check_title(title)))
        await self._owner.settled(fut)

    async def delete(self, conversation_id: int) -> DeletedConversation:
        """Delete a conversation and its messages; returns a snapshot for ``restore``.
        Waits for the database (a locked one delays it)."""

        def delete(ctx: ApplyContext, cid: int) -> DeletedConversation:
            real = ctx.real(cid)
            # Its settings go with it (ON DELETE CASCADE): keep them for Undo.
            kept = ChatSettingsStore(self._store.db).get(real)
            return dataclasses.replace(self._store.delete(real), settings=kept.to_dict())

        result = await asyncio.wrap_future(self._owner.enqueue(Call(delete, (conversation_id,))))
        assert isinstance(result, DeletedConversation)
        return result

    async def restore(self, snapshot: DeletedConversation) -> ConversationRow:
        """Undo a delete (same ids). Raises ValueError when it exists again."""

        def restore(_ctx: ApplyContext, snap: DeletedConversation) -> ConversationRow:
            row = self._store.restore(snap)
            if snap.settings:
                settings = ChatSettings.from_dict(snap.settings)
                ChatSettingsStore(self._store.db).set(row.id, settings)
            return row

        result = await asyncio.wrap_future(self._owner.enqueue(Call(restore, (snapshot,))))
        assert isinstance(result, ConversationRow)
        return result

    async def delete_messages_from(self, conversation_id: int, message_id: int) -> None:
        """Delete ``message_id`` and every later message of the conversation."""
        await self._owner.settled(
            self._owner.enqueue(DeleteMessagesFrom(conversation_id, message_id))
        )

    # ---- system prompt and parameters, presets ----------------------------------------------

    def _chat_settings(self, cid: int) -> ChatSettings:
        real = self._real(cid)
        found = ChatSettingsStore(self._store.db).get(real) if real is not None else ChatSettings()
        overlay = _Overlay(self._owner)
        for op in overlay.ops:
            if isinstance(op, SetChatSettings) and overlay.same(op.conversation_id, cid):
                found = ChatSettings.from_dict(op.settings)
        return found

    async def chat_settings(self, conversation_id: int) -> ChatSettings:
        """The conversation's system prompt and parameters (waiting changes included)."""
        return await self._owner.run(self._chat_settings, conversation_id)

    def queue_chat_settings(
        self, conversation_id: int, settings: ChatSettings, *, within: float = 0.0
    ) -> Future[Any]:
        """Queue the conversation's system prompt and parameters (the whole set);
        ``within`` as ``DbOwner.enqueue``."""
        return self._owner.enqueue(
            SetChatSettings(conversation_id, settings.to_dict()), within=within
        )

    async def set_chat_settings(self, conversation_id: int, settings: ChatSettings) -> bool:
        """Keep ``settings`` with the conversation; False while the database refuses it
        (the change waits)."""
        return await self._owner.settled(self.queue_chat_settings(conversation_id, settings))

    async def presets(self) -> builtins.list[tuple[str, ChatSettings]]:
        """The saved presets, by name."""
        return await self._owner.run(ChatSettingsStore(self._store.db).presets)

    async def save_preset(self, name: str, settings: ChatSettings) -> None:
        """Save (or replace) a preset. Raises ValueError for an empty name."""

        def save(_ctx: ApplyContext, name: str, settings: ChatSettings) -> None:
            ChatSettingsStore(self._store.db).save_preset(name, settings)

        await asyncio.wrap_future(self._owner.enqueue(Call(save, (name, settings))))

    async def delete_preset(self, name: str) -> bool:
        def drop(_ctx: ApplyContext, name: str) -> bool:
            return ChatSettingsStore(self._store.db).delete_preset(name)

        return bool(await asyncio.wrap_future(self._owner.enqueue(Call(drop, (name,)))))

    # ---- attachments ------------------------------------------------------------------------

    def queue_attachment(self, prepared: Prepared, *, within: float = 0.0) -> Future[Any]:
        """Queue an attachment's bytes (stored once per content); ``within`` as
        ``DbOwner.enqueue``."""
        ref = prepared.ref
        return self._owner.enqueue(
            PutAttachment(
                ref.sha256,
                ref.mime,
                ref.size,
                base64.b64encode(prepared.data).decode("ascii"),
                utcnow(),
            ),
            within=within,
        )

    def _attachment(self, sha256: str) -> tuple[str, bytes] | None:
        for op in reversed(self._owner.pending_ops()):
            if isinstance(op, PutAttachment) and op.sha256 == sha256:
                return op.mime, base64.b64decode(op.data_b64)
        return AttachmentStore(self._store.db).get(sha256)

    async def attachment(self, sha256: str) -> tuple[str, bytes] | None:
        """(mime, bytes) of a stored attachment; None when it is not there."""
        return await self._owner.run(self._attachment, sha256)

    # ---- reply versions ---------------------------------------------------------------------

    async def select_version(self, message_id: int, index: int) -> MessageRow:
        """Show version ``index`` of a regenerated reply: it becomes the row's text, and so
        the one sent as history. Returns the row as it is now.

        Raises:
            ValueError: no such version. NotFoundError: no such message.
        """
        row = await self.get_message(message_id)
        if row is None:
            raise NotFoundError(f"There is no message {message_id}")
        change = versions.flip(row, index)

        def write(ctx: ApplyContext, mid: int) -> None:
            versions.write_flip(self._store.db, ctx.real(mid), change)

        await asyncio.wrap_future(self._owner.enqueue(Call(write, (message_id,))))
        return dataclasses.replace(
            row,
            content=change.content,
            status=change.status,
            model_ref=change.model_ref,
            requested_model=change.requested_model,
            error=change.error,
            meta=change.meta,
        )


__all__ = ["Conversations", "NotFoundError"]

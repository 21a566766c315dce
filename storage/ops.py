"""Queued database changes: plain data, so they can wait for a locked database, be merged,
be shown in reads before they land, and be kept in a spool file when the app must exit.

The owner thread (``storage.owner``) applies a batch of them in one transaction. A change
that creates a row gets a *provisional id* (a negative number) when it is queued; callers use
that id at once (a reply streams into its row before the row exists in the file), and every
later change or read that names it is resolved to the row's real id once it is written
(``ApplyContext.real``, ``DbOwner.resolve``).

Only what a reply needs is spoolable (conversations, messages, their edits, usage rows);
anything else is a ``Call`` of a store method, which waits for the database like the rest
but cannot outlive the process.
"""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any, ClassVar

from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.storage.conversations import ConversationRow, ConversationStore, NotFoundError
from halext_desktop.storage.usage import UsageLog

_pid_lock = threading.Lock()
_pids = itertools.count(-1, -1)


def new_pid() -> int:
    """A provisional id for a row not written yet (negative: never a real SQLite rowid)."""
    with _pid_lock:
        return next(_pids)


class ApplyContext:
    """What an op needs while its batch is written: the stores, and the id map.

    Args:
        conversations: the store (its writes join the batch's transaction).
        usage: the usage table.
        ids: provisional → real ids already written (read-only here).
    """

    def __init__(
        self, conversations: ConversationStore, usage: UsageLog, ids: Mapping[int, int]
    ) -> None:
        self.conversations = conversations
        self.usage = usage
        self._ids = ids
        self.new_ids: dict[int, int] = {}

    def real(self, some_id: int) -> int:
        """The real id of ``some_id`` (itself when it is real)."""
        if some_id >= 0:
            return some_id
        found = self.new_ids.get(some_id, self._ids.get(some_id))
        if found is None:
            # The row it names was never written (its own change failed): say which.
            raise NotFoundError(f"the row {some_id} was never written")
        return found

    def real_or_none(self, some_id: int | None) -> int | None:
        if some_id is None:
            return None
        try:
            return self.real(some_id)
        except NotFoundError:
            return None

    def assign(self, pid: int, real: int) -> None:
        self.new_ids[pid] = real


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@dataclass
class Op:
    """A queued change. Subclasses say how to ``apply`` it and which ids it holds."""

    kind: ClassVar[str] = ""
    spoolable: ClassVar[bool] = True

    def apply(self, ctx: ApplyContext) -> Any:
        raise NotImplementedError

    def id_fields(self) -> tuple[str, ...]:
        """Names of the fields that hold row ids (provisional ones are remapped on load)."""
        return ()

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = _iso(value)
        return {"op": self.kind, **data}

    def remap(self, mapping: Callable[[int], int]) -> Op:
        """A copy whose provisional ids went through ``mapping``."""
        changes = {}
        for name in self.id_fields():
            value = getattr(self, name)
            if isinstance(value, int) and value < 0:
                changes[name] = mapping(value)
        return replace(self, **changes) if changes else self


@dataclass
class NewConversation(Op):
    kind: ClassVar[str] = "new_conversation"
    pid: int
    title: str
    default_model_id: str | None
    created_at: datetime

    def apply(self, ctx: ApplyContext) -> ConversationRow:
        row = ctx.conversations.create(
            self.title, self.default_model_id, created_at=self.created_at
        )
        ctx.assign(self.pid, row.id)
        return row

    def id_fields(self) -> tuple[str, ...]:
        return ("pid",)


@dataclass
class EditConversation(Op):
    """A new title and/or default model (``set_default`` distinguishes "set to None")."""

    kind: ClassVar[str] = "edit_conversation"
    conversation_id: int
    title: str | None = None
    default_model_id: str | None = None
    set_default: bool = False

    def apply(self, ctx: ApplyContext) -> None:
        cid = ctx.real(self.conversation_id)
        if self.title is not None:
            ctx.conversations.rename(cid, self.title)
        if self.set_default:
            ctx.conversations.set_default_model(cid, self.default_model_id)

    def id_fields(self) -> tuple[str, ...]:
        return ("conversation_id",)

    def merge(self, later: EditConversation) -> None:
        if later.title is not None:
            self.title = later.title
        if later.set_default:
            self.default_model_id, self.set_default = later.default_model_id, True


@dataclass
class NewMessage(Op):
    kind: ClassVar[str] = "new_message"
    pid: int
    conversation_id: int
    role: str
    content: str
    status: str
    created_at: datetime
    model_ref: str | None = None
    requested_model: str | None = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    writer: str | None = None

    def apply(self, ctx: ApplyContext) -> int:
        row = ctx.conversations.add_message(
            ctx.real(self.conversation_id),
            self.role,
            self.content,
            status=self.status,
            model_ref=self.model_ref,
            requested_model=self.requested_model,
            meta=self.meta,
            created_at=self.created_at,
            writer=self.writer,
        )
        if self.error is not None:
            ctx.conversations.edit_message(row.id, error=self.error)
        ctx.assign(self.pid, row.id)
        return row.id

    def id_fields(self) -> tuple[str, ...]:
        return ("pid", "conversation_id")

    def absorb(self, edit: EditMessage) -> None:
        """Take a later edit of this (still unwritten) message into the insert itself."""
        for name in ("content", "status", "model_ref", "error"):
            value = getattr(edit, name)
            if value is not None:
                setattr(self, name, value)
        if edit.meta is not None:
            self.meta = dict(edit.meta)
        if edit.meta_patch:
            self.meta = {**self.meta, **edit.meta_patch}
        if edit.writer is not None:
            self.writer = edit.writer
        elif edit.clear_writer:
            self.writer = None


@dataclass
class EditMessage(Op):
    kind: ClassVar[str] = "edit_message"
    message_id: int
    content: str | None = None
    status: str | None = None
    model_ref: str | None = None
    error: str | None = None
    meta: dict[str, Any] | None = None
    meta_patch: dict[str, Any] | None = None
    writer: str | None = None
    clear_writer: bool = False

    def apply(self, ctx: ApplyContext) -> None:
        ctx.conversations.edit_message(
            ctx.real(self.message_id),
            content=self.content,
            status=self.status,
            model_ref=self.model_ref,
            error=self.error,
            meta=self.meta,
            meta_patch=self.meta_patch,
            writer=self.writer,
            clear_writer=self.clear_writer,
        )

    def id_fields(self) -> tuple[str, ...]:
        return ("message_id",)

    def merge(self, later: EditMessage) -> None:
        """Fold a later edit of the same message into this one (the later one wins)."""
        for name in ("content", "status", "model_ref", "error"):
            value = getattr(later, name)
            if value is not None:
                setattr(self, name, value)
        if later.meta is not None:
            self.meta, self.meta_patch = dict(later.meta), None
        if later.meta_patch:
            if self.meta is not None:
                self.meta = {**self.meta, **later.meta_patch}
            else:
                self.meta_patch = {**(self.meta_patch or {}), **later.meta_patch}
        if later.writer is not None:
            self.writer, self.clear_writer = later.writer, False
        elif later.clear_writer:
            self.writer, self.clear_writer = None, True


@dataclass
class DeleteMessagesFrom(Op):
    """Delete ``message_id`` and every later message of the conversation."""

    kind: ClassVar[str] = "delete_messages_from"
    conversation_id: int
    message_id: int

    def apply(self, ctx: ApplyContext) -> int:
        mid = ctx.real_or_none(self.message_id)
        if mid is None:
            return 0  # never written: nothing to delete
        return ctx.conversations.delete_messages_from(ctx.real(self.conversation_id), mid)

    def id_fields(self) -> tuple[str, ...]:
        return ("conversation_id", "message_id")


@dataclass
class SetChatSettings(Op):
    """A conversation's system prompt and parameters (``storage.chat_settings``), whole."""

    kind: ClassVar[str] = "set_chat_settings"
    conversation_id: int
    settings: dict[str, Any] = field(default_factory=dict)

    def apply(self, ctx: ApplyContext) -> None:
        from halext_desktop.storage.chat_settings import ChatSettings, ChatSettingsStore

        ChatSettingsStore(ctx.conversations.db).set(
            ctx.real(self.conversation_id), ChatSettings.from_dict(self.settings)
        )

    def id_fields(self) -> tuple[str, ...]:
        return ("conversation_id",)


@dataclass
class PutAttachment(Op):
    """The bytes of an attached file (base64 here, so a spool file can hold it); stored
    once per content."""

    kind: ClassVar[str] = "put_attachment"
    sha256: str
    mime: str
    size: int
    data_b64: str
    created_at: datetime

    def apply(self, ctx: ApplyContext) -> None:
        from halext_desktop.storage.attachments import AttachmentStore

        AttachmentStore(ctx.conversations.db).put(
            self.sha256, self.mime, base64.b64decode(self.data_b64), self.created_at
        )


_USAGE_TIMES = ("created_at",)


@dataclass
class NewUsage(Op):
    """One usage row; ``message_id`` is the reply it belongs to (may be provisional)."""

    kind: ClassVar[str] = "new_usage"
    record: UsageRecord
    message_id: int | None = None

    def apply(self, ctx: ApplyContext) -> int:
        row = replace(self.record, conversation_id=ctx.real_or_none(self.record.conversation_id))
        return ctx.usage.insert(row, message_id=ctx.real_or_none(self.message_id))

    def to_json(self) -> dict[str, Any]:
        rec = asdict(self.record)
        for key in _USAGE_TIMES:
            rec[key] = _iso(rec[key])
        rec["status"] = UsageStatus(rec["status"]).value
        return {"op": self.kind, "record": rec, "message_id": self.message_id}

    def remap(self, mapping: Callable[[int], int]) -> Op:
        rec = self.record
        cid = rec.conversation_id
        if cid is not None and cid < 0:
            rec = replace(rec, conversation_id=mapping(cid))
        mid = self.message_id
        if mid is not None and mid < 0:
            mid = mapping(mid)
        return NewUsage(rec, mid)


@dataclass
class Call(Op):
    """Any store method, run on the owner thread inside the batch (not spoolable).
    ``fn(ctx, *args, **kwargs)``: the context resolves provisional ids."""

    kind: ClassVar[str] = "call"
    spoolable: ClassVar[bool] = False
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def apply(self, ctx: ApplyContext) -> Any:
        return self.fn(ctx, *self.args, **self.kwargs)

    def to_json(self) -> dict[str, Any]:
        raise TypeError("a Call cannot be spooled")


_KINDS: dict[str, type[Op]] = {
    cls.kind: cls
    for cls in (
        NewConversation,
        EditConversation,
        NewMessage,
        EditMessage,
        DeleteMessagesFrom,
        SetChatSettings,
        PutAttachment,
    )
}


def op_from_json(data: Mapping[str, Any]) -> Op:
    """The op a spool file holds (raises KeyError/TypeError/ValueError when malformed)."""
    kind = data["op"]
    if kind == NewUsage.kind:
        rec = dict(data["record"])
        for key in _USAGE_TIMES:
            rec[key] = _when(rec.get(key))
        rec["status"] = UsageStatus(rec["status"])
        rec["id"] = None
        return NewUsage(UsageRecord(**rec), data.get("message_id"))
    cls = _KINDS[kind]
    values = {k: v for k, v in data.items() if k != "op"}
    if "created_at" in values:
        values["created_at"] = _when(values["created_at"])
    return cls(**values)

"""The chat list's item model: lightweight message items and the text shown around them.

Items are copied out of whatever the caller passes (storage's ``MessageRow`` or any object
with the same attributes), so the view never holds on to storage objects and can append
streamed text in place. Each item carries a ``version`` that changes with its content or
status; the delegate keys its caches on (id, version, width).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from halext_desktop.routing.display import (
    RouteNames,
    chip_label,
    failed_label,
    not_sent_label,
    route_name,
)
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.types import Locality, tokens_per_second
from halext_desktop.ui.text import plain

ModelIndex = QModelIndex | QPersistentModelIndex

STATUS_STREAMING = "streaming"
STATUS_PENDING = "pending"
LIVE_STATUSES = (STATUS_STREAMING, STATUS_PENDING)

# Versions are unique across all items, so a cache key (id, version) never comes back to
# mean different text, even when a conversation is reloaded.
_VERSIONS = itertools.count(1)


def next_version() -> int:
    return next(_VERSIONS)


class MessageItem:
    """One message as the view holds it (a mutable copy of a MessageRow-like object)."""

    __slots__ = (
        "id",
        "conversation_id",
        "role",
        "content",
        "status",
        "model_ref",
        "requested_model",
        "error",
        "meta",
        "created_at",
        "version",
        "context_note",
    )

    def __init__(
        self,
        id: int,
        role: str,
        content: str,
        *,
        conversation_id: int | None = None,
        status: str = "ok",
        model_ref: str | None = None,
        requested_model: str | None = None,
        error: str | None = None,
        meta: dict[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> None:
        self.id = id
        self.conversation_id = conversation_id
        self.role = role
        self.content = content
        self.status = status
        self.model_ref = model_ref
        self.requested_model = requested_model
        self.error = error
        self.meta: dict[str, Any] = dict(meta or {})
        self.created_at = created_at
        self.version = next_version()
        # Shown above this message: the model's context starts here (older ones were not
        # sent). Set by the view, never by storage.
        self.context_note: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> MessageItem:
        """Copy a MessageRow-like object (duck-typed; missing optional fields default)."""
        return cls(
            int(row.id),
            str(row.role),
            str(getattr(row, "content", "") or ""),
            conversation_id=getattr(row, "conversation_id", None),
            status=str(getattr(row, "status", "ok") or "ok"),
            model_ref=getattr(row, "model_ref", None),
            requested_model=getattr(row, "requested_model", None),
            error=getattr(row, "error", None),
            meta=getattr(row, "meta", None) or {},
            created_at=getattr(row, "created_at", None),
        )

    def update_from(self, row: Any, *, keep_content: bool = False) -> None:
        """Take over ``row``'s fields; ``keep_content`` keeps streamed text the row lacks."""
        fresh = MessageItem.from_row(row)
        for name in self.__slots__:
            if name in ("id", "version", "context_note"):
                continue
            if name == "content" and keep_content and len(fresh.content) < len(self.content):
                continue
            setattr(self, name, getattr(fresh, name))
        self.version = next_version()

    @property
    def is_live(self) -> bool:
        """Still being written (pending or streaming)."""
        return self.status in LIVE_STATUSES

    def __repr__(self) -> str:
        return (
            f"MessageItem(id={self.id}, role={self.role!r}, status={self.status!r}, "
            f"v{self.version})"
        )


# ---- text shown around a message ------------------------------------------------------------


def _locality_of(item: MessageItem, ref: ModelRef) -> Locality:
    raw = item.meta.get("locality")
    try:
        return Locality(str(raw))
    except ValueError:
        # Older rows without a locality: the route kind is the best guess for the label.
        if ref.kind == "ollama" and ref.host is None:
            return Locality.LOCAL
        return Locality.CLOUD if ref.kind == "openai" else Locality.SELF_HOSTED


def chip_text(item: MessageItem, names: RouteNames | None = None) -> str:
    """``AI • openai:gpt-4o-mini · halext`` for what answered; the asked model while a reply
    is on its way; for a reply no model gave, why (``Not sent — cloud providers are
    disabled``) or which route failed (``Failed — halext``), never the asked model as if it
    had answered. ``You`` / ``System`` for the other roles. ``names``: what each route is
    called (its host's name in the settings)."""
    if item.role == "user":
        return "You"
    if item.role == "system":
        return "System"
    if item.model_ref:
        return _ref_chip(item, item.model_ref, names)
    if item.is_live and item.requested_model:
        return _ref_chip(item, item.requested_model, names)
    not_sent = item.meta.get("not_sent")
    if item.status == "blocked" or (not_sent and item.status == "error"):
        return not_sent_label(str(not_sent or "blocked by the cloud setting"))
    if item.status in ("error", "placeholder"):
        route = item.meta.get("failed_route") or _route_of(item)
        return failed_label(route_name(str(route), names) if route else "the route")
    if item.status == "stopped":
        return "Stopped — no reply"
    if item.requested_model:  # an older row that did finish: what it was asked of
        return _ref_chip(item, item.requested_model, names)
    return "AI"


def _ref_chip(item: MessageItem, raw: str, names: RouteNames | None) -> str:
    try:
        ref = ModelRef.parse(raw)
    except ModelRefError:
        return f"AI • {raw}"
    return chip_label(ref, _locality_of(item, ref), names)


def _route_of(item: MessageItem) -> str | None:
    try:
        return ModelRef.parse(item.requested_model or "").route_id
    except ModelRefError:
        return None


def _seconds(ms: float) -> str:
    if ms < 100:
        return f"{int(ms)} ms"
    if ms < 10_000:
        return f"{ms / 1000:.1f} s"
    if ms < 60_000:
        return f"{ms / 1000:.0f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds} s"


def _number(meta: dict[str, Any], key: str) -> float | None:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def stats_text(meta: dict[str, Any]) -> str:
    """``0.4 s / 1.2 s · 312 tok``: time to first token / total time, then the reply's
    tokens; ``~312 tok`` when the count is an estimate. Unknown parts are left out."""
    parts: list[str] = []
    ttft, total = _number(meta, "ttft_ms"), _number(meta, "latency_ms")
    if ttft is not None and total is not None:
        parts.append(f"{_seconds(ttft)} / {_seconds(total)}")
    elif total is not None:
        parts.append(_seconds(total))
    elif ttft is not None:
        parts.append(f"first token {_seconds(ttft)}")
    tokens = _number(meta, "response_tokens")
    exact = bool(meta.get("tokens_exact"))
    # An estimate of nothing ("~0 tok", before any text came) says nothing: left out.
    if tokens is not None and (tokens > 0 or exact):
        approx = "" if exact else "~"
        parts.append(f"{approx}{int(tokens)} tok")
    rate = tokens_per_second(meta.get("eval_count"), meta.get("eval_duration_ns"))
    if rate is not None:
        parts.append(f"{_rate(rate)} tok/s")
    return " · ".join(parts)


def _rate(rate: float) -> str:
    return f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"


def stats_tooltip(meta: dict[str, Any]) -> str:
    """The long form of ``stats_text`` for the tooltip."""
    lines: list[str] = []
    ttft, total = _number(meta, "ttft_ms"), _number(meta, "latency_ms")
    if ttft is not None:
        lines.append(f"First token after {_seconds(ttft)}")
    if total is not None:
        lines.append(f"Total time {_seconds(total)}")
    exact = bool(meta.get("tokens_exact"))
    for key, label in (("response_tokens", "Reply"), ("prompt_tokens", "Prompt")):
        value = _number(meta, key)
        if value is not None:
            how = "exact" if exact else "estimated"
            lines.append(f"{label}: {int(value)} tokens ({how})")
    count, duration = meta.get("eval_count"), meta.get("eval_duration_ns")
    rate = tokens_per_second(count, duration)
    if rate is not None and isinstance(duration, int):
        lines.append(
            f"Speed: {_rate(rate)} tokens/s ({count} tokens in {_seconds(duration / 1e6)}, "
            "measured by the model's server)"
        )
    return "\n".join(lines)


def _local(moment: datetime) -> datetime:
    # The database keeps UTC without a zone; an aware time is converted as it is.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone()


def sent_text(created_at: datetime | None, today: date | None = None) -> str:
    """When a message was written, in local time, briefly: ``today 14:02``,
    ``yesterday 09:15``, ``3 Nov 14:02`` this year, ``3 Nov 2025`` before; "" if unknown.
    ``today``: the local date to count from (the current one if None)."""
    if created_at is None:
        return ""
    when = _local(created_at)
    today = today or date.today()
    clock = f"{when.hour:02d}:{when.minute:02d}"
    day = when.date()
    if day == today:
        return f"today {clock}"
    if day == today - timedelta(days=1):
        return f"yesterday {clock}"
    month = when.strftime("%b")
    if day.year == today.year:
        return f"{day.day} {month} {clock}"
    return f"{day.day} {month} {day.year}"


def sent_tooltip(item: MessageItem) -> str:
    """The full local date and time, for the tooltip over ``sent_text``."""
    if item.created_at is None:
        return ""
    when = _local(item.created_at)
    verb = "Answered" if item.role == "assistant" else "Sent"
    return f"{verb} {when.strftime('%A')} {when.day} {when.strftime('%B %Y')}, {when:%H:%M:%S}"


def warning_lines(item: MessageItem) -> list[str]:
    """The ⚠ lines under a reply: what answered differs from what was asked, a fallback
    route, a stop, a failure part-way, a block. Never silent."""
    lines: list[str] = []
    if item.role == "assistant":
        notes = item.meta.get("notes") or []
        if isinstance(notes, str):
            notes = [notes]
        lines.extend(f"⚠ {note}" for note in notes if str(note).strip())
    has_text = bool(item.content.strip())
    error = (item.error or "").strip()
    if item.status == "stopped":
        lines.append("⚠ Stopped — partial reply kept" if has_text else "⚠ Stopped before any reply")
    elif item.status == "interrupted":
        # The app went away mid-reply (a crash, kill, shutdown): recovered at the next start.
        lines.append(
            "⚠ Interrupted — partial reply kept" if has_text else "⚠ Interrupted before any reply"
        )
    elif item.status == "error":
        if item.role != "assistant":
            lines.append(f"⚠ Not sent: {error}" if error else "⚠ Not sent")
        elif has_text:
            lines.append(f"⚠ Failed part-way: {error or 'unknown error'} — partial reply kept")
        else:
            lines.append(f"⚠ Failed: {error or 'unknown error'}")
    elif item.status == "blocked":
        lines.append(
            f"⚠ Blocked: {error}"
            if error
            else "⚠ Blocked: a cloud model answered while cloud providers are disabled"
        )
    elif item.status == "placeholder":
        # The server's mock text stood in for a model that did not work: not an answer.
        lines.append(
            f"⚠ {error}" if error else "⚠ halext had no working model and sent its placeholder text"
        )
    elif item.role == "assistant" and not has_text and not item.is_live:
        # Finished, and nothing came: say so rather than show an empty reply.
        lines.append("⚠ Empty reply: the model sent no text — Regenerate, or try another model")
    return [plain(line) for line in lines]


def accessible_text(item: MessageItem, names: RouteNames | None = None) -> str:
    """What a screen reader says for a row."""
    head = chip_text(item, names)
    warn = " ".join(warning_lines(item))
    tail = f" {warn}" if warn else ""
    return f"{head}: {item.content}{tail}"


class ChatModel(QAbstractListModel):
    """The messages of one conversation, oldest first.

    Custom roles return plain Python values: ``ItemRole`` the MessageItem itself (the
    delegate's fast path), the others the text the delegate paints, for tests and
    accessibility.
    """

    ItemRole = Qt.ItemDataRole.UserRole + 1
    IdRole = Qt.ItemDataRole.UserRole + 2
    ChipRole = Qt.ItemDataRole.UserRole + 3
    StatsRole = Qt.ItemDataRole.UserRole + 4
    WarningsRole = Qt.ItemDataRole.UserRole + 5
    StatusRole = Qt.ItemDataRole.UserRole + 6
    VersionRole = Qt.ItemDataRole.UserRole + 7

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[MessageItem] = []
        self._rows: dict[int, int] = {}  # id -> row, rebuilt after structural changes
        self.route_names: dict[str, str] = {}  # route id -> the name it is shown by

    # ---- Qt model API ------------------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == self.ItemRole:
            return item
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return item.content
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return accessible_text(item, self.route_names)
        if role == self.IdRole:
            return item.id
        if role == self.ChipRole:
            return chip_text(item, self.route_names)
        if role == self.StatsRole:
            return stats_text(item.meta) if item.role == "assistant" else ""
        if role == self.WarningsRole:
            return warning_lines(item)
        if role == self.StatusRole:
            return item.status
        if role == self.VersionRole:
            return item.version
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # ---- lookups -----------------------------------------------------------------------------

    @property
    def items(self) -> Sequence[MessageItem]:
        """The items, oldest first (read-only view; mutate through the model)."""
        return self._items

    def item(self, row: int) -> MessageItem:
        return self._items[row]

    def row_of(self, message_id: int) -> int:
        """The row of ``message_id``, or -1."""
        return self._rows.get(message_id, -1)

    def item_by_id(self, message_id: int) -> MessageItem | None:
        row = self._rows.get(message_id, -1)
        return self._items[row] if row >= 0 else None

    def index_of(self, message_id: int) -> QModelIndex:
        row = self.row_of(message_id)
        return self.index(row, 0) if row >= 0 else QModelIndex()

    @property
    def oldest_id(self) -> int | None:
        return self._items[0].id if self._items else None

    def last_assistant_id(self) -> int | None:
        """The newest assistant reply, the one "Regenerate" applies to."""
        for item in reversed(self._items):
            if item.role == "assistant":
                return item.id
            if item.role == "user":
                return None
        return None

    # ---- changes -----------------------------------------------------------------------------

    def _reindex(self) -> None:
        self._rows = {item.id: row for row, item in enumerate(self._items)}

    def set_items(self, items: Iterable[MessageItem]) -> None:
        """Replace everything (one model reset)."""
        self.beginResetModel()
        self._items = list(items)
        self._reindex()
        self.endResetModel()

    def insert_front(self, items: Sequence[MessageItem]) -> None:
        """Older messages above the current ones (lazy loading); ids already shown are skipped."""
        fresh = [item for item in items if item.id not in self._rows]
        if not fresh:
            return
        self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
        self._items[0:0] = fresh
        self._reindex()
        self.endInsertRows()

    def append_item(self, item: MessageItem) -> int:
        """Add at the end (or replace the item with the same id); returns its row."""
        row = self._rows.get(item.id, -1)
        if row >= 0:
            self._items[row] = item
            self._changed(row)
            return row
        row = len(self._items)
        self.beginInsertRows(QModelIndex(), row, row)
        self._items.append(item)
        self._rows[item.id] = row
        self.endInsertRows()
        return row

    def update_item(self, row_obj: Any, *, keep_content: bool = False) -> int:
        """Refresh an item from a MessageRow-like object; returns its row or -1."""
        row = self._rows.get(int(row_obj.id), -1)
        if row < 0:
            return -1
        self._items[row].update_from(row_obj, keep_content=keep_content)
        self._changed(row)
        return row

    def append_text(self, message_id: int, text: str) -> int:
        """Streamed text: one dataChanged for that row only. Returns the row or -1."""
        row = self._rows.get(message_id, -1)
        if row < 0 or not text:
            return row
        item = self._items[row]
        item.content += text
        item.version = next_version()
        self._changed(row)
        return row

    def set_status(self, message_id: int, status: str) -> int:
        row = self._rows.get(message_id, -1)
        if row < 0:
            return row
        item = self._items[row]
        if item.status != status:
            item.status = status
            item.version = next_version()
            self._changed(row)
        return row

    def remove_from(self, message_id: int) -> int:
        """Remove that message and every later one; returns how many rows went."""
        row = self._rows.get(message_id, -1)
        if row < 0:
            return 0
        count = len(self._items) - row
        self.beginRemoveRows(QModelIndex(), row, len(self._items) - 1)
        del self._items[row:]
        self._reindex()
        self.endRemoveRows()
        return count

    def remove_front(self, count: int) -> list[MessageItem]:
        """Remove the ``count`` oldest items (the view keeps its model bounded); returns
        them. One model reset: telling the list about thousands of removed rows costs more
        than laying out the few hundred that stay."""
        count = min(count, len(self._items))
        if count <= 0:
            return []
        gone = self._items[:count]
        self.set_items(self._items[count:])
        return gone

    def set_context_note(self, message_id: int, note: str | None) -> int:
        """The note above ``message_id`` (None: none); returns its row or -1."""
        row = self._rows.get(message_id, -1)
        if row < 0:
            return row
        item = self._items[row]
        if item.context_note != note:
            item.context_note = note
            item.version = next_version()
            self._changed(row)
        return row

    def _changed(self, row: int) -> None:
        index = self.index(row, 0)
        self.dataChanged.emit(index, index, [])

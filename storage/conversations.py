"""Local conversations and their messages.

Reads return plain frozen dataclasses (never live ORM objects), so rows can cross from
the loop thread to the GUI thread safely. Long histories load lazily: ``messages(cid,
limit=200)`` is one range scan on the (conversation_id, id) index however long the chat.
Search uses the FTS5 trigram index when the database has it (substring, case-insensitive)
and a scan otherwise, with the same results.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.types import ChatMessage
from halext_desktop.storage.connection import Conn
from halext_desktop.storage.db import Database
from halext_desktop.storage.row_values import (
    MESSAGE_ROLES,
    MESSAGE_STATUSES,
    from_time_text,
    time_text,
    utcnow,
)

if TYPE_CHECKING:
    from sqlalchemy import Select

# What a chat turn writes and reads (create, get, add a message, edit it) is plain SQL on
# the database's sqlite3 connection, so the CLI's ``ask`` never loads SQLAlchemy; the
# other queries (lists, paging, delete and restore) build Core statements, and import
# SQLAlchemy and the tables (``storage.models``) when first run.
_MESSAGE_COUNT = "(SELECT count(*) FROM messages WHERE messages.conversation_id = conversations.id)"
# A conversation's columns in table order, then its message count (``_conversation_row``).
_CONVERSATION_COLUMNS = "id, title, default_model_id, created_at, updated_at"
_SELECT_CONVERSATION = (
    f"SELECT {_CONVERSATION_COLUMNS}, {_MESSAGE_COUNT} FROM conversations WHERE id = ?"
)
# A message's columns in table order, as ``_message_row`` reads them.
_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, status, model_ref, requested_model, error, meta, "
    "created_at"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, role, content, status, model_ref, "
    "requested_model, error, meta, created_at, writer) "
    "VALUES (:conversation_id, :role, :content, :status, :model_ref, :requested_model, "
    ":error, :meta, :created_at, :writer)"
)
# The columns ``_update_conversation`` and ``edit_message`` may set (names in SQL text
# come from here, never from a caller).
_CONVERSATION_FIELDS = frozenset({"title", "default_model_id"})
_MESSAGE_FIELDS = frozenset({"content", "status", "model_ref", "error", "writer", "meta"})

# Statuses whose text is a real turn of the dialogue (a stopped or interrupted reply is
# still what the user saw and may refer to; an error or a blocked reply is not).
HISTORY_STATUSES = ("ok", "stopped", "interrupted")
SNIPPET_BEFORE = 30
SNIPPET_AFTER = 60
MIN_FTS_TERM = 3  # the trigram tokenizer cannot match shorter strings


# How many index hits (or message ids, when scanning) one search step looks at: the first
# step few (a common word finds its conversations among the newest few hundred messages;
# fetching 20,000 hits would cost ~130 ms at a million messages), each next one four times
# more, up to the most (a rare word walks the rest in large steps).
SEARCH_FIRST_STEP_ROWS = 256
SEARCH_STEP_ROWS = 20_000
# The only characters whose Python lower-case holds ASCII: İ → "i̇", K (Kelvin) → "k".
_FOLDS_TO_ASCII = ("\u0130", "\u212a")


@dataclass
class Search:
    """A search under way (``ConversationStore.search_begin`` / ``search_step``).

    Attributes:
        terms: the words searched for; ``folded`` the same, lower-cased.
        limit: how many conversations are wanted.
        fts: messages are walked through the full-text index (else scanned).
        match: the FTS5 query (every trigram of every word of 3+ characters).
        before: message ids below this one are still to walk.
        titles: conversations whose title matches.
        hits: conversation → (newest matching message id, its text, its time).
        done: nothing more to walk.
        step: how many rows the next step looks at.
    """

    terms: builtins.list[str]
    folded: builtins.list[str]
    limit: int
    fts: bool = False
    match: str = ""
    before: int = 0
    titles: set[int] = field(default_factory=set)
    hits: dict[int, tuple[int, str, datetime]] = field(default_factory=dict)
    done: bool = False
    step: int = SEARCH_FIRST_STEP_ROWS


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _trigrams(term: str) -> builtins.list[str]:
    """The trigram tokenizer's tokens of ``term``: every three characters in a row."""
    return [term[i : i + 3] for i in range(len(term) - 2)]


def _contains_all(content: str, folded: builtins.list[str]) -> bool:
    text = content.lower()
    return all(t in text for t in folded)


def _prefilter(folded: builtins.list[str]) -> str:
    """SQL that keeps every row that may contain all ``folded`` terms (the rest is read by
    Python and checked exactly): SQLite's lower() folds ASCII only, so it is used for
    ASCII terms, with the two characters whose lower-case is ASCII let through."""
    if not all(t.isascii() for t in folded):
        return " AND ".join("instr(hx_fold(content), ?) > 0" for _ in folded)
    exact = " AND ".join("instr(lower(content), ?) > 0" for _ in folded)
    odd = " OR ".join("instr(content, ?) > 0" for _ in _FOLDS_TO_ASCII)
    return f"(({exact}) OR {odd})"


def _prefilter_args(folded: builtins.list[str]) -> tuple[str, ...]:
    if not all(t.isascii() for t in folded):
        return tuple(folded)
    return (*folded, *_FOLDS_TO_ASCII)


def _as_utc(value: Any) -> datetime:
    """A message's ``created_at`` as read with plain SQL (naive UTC text)."""
    return from_time_text(value)


class NotFoundError(LookupError):
    """No conversation or message with that id."""


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One conversation as the sidebar shows it (times are UTC-aware)."""

    id: int
    title: str
    default_model_id: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int  # -1: not counted (``list(counted=False)``, the sidebar's pages)


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One stored message. ``meta`` holds the reply chip's details (ttft_ms, latency_ms,
    tokens, tokens_exact, locality, notes)."""

    id: int
    conversation_id: int
    role: str
    content: str
    status: str
    model_ref: str | None
    requested_model: str | None
    error: str | None
    meta: dict[str, Any]
    created_at: datetime


def estimate_tokens(text: str) -> int:
    """A model's token count for ``text``, estimated without its tokenizer: a token is
    about four bytes of UTF-8 (English runs a little above, code and CJK text below; bytes
    rather than characters keep CJK, at three bytes a character, from being undercounted),
    plus a few for the message's framing in the chat template."""
    return (len(text.encode("utf-8", errors="surrogatepass")) + 3) // 4 + MESSAGE_OVERHEAD


MESSAGE_OVERHEAD = 4  # tokens a chat template adds around each message (role markers)


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """The dialogue sent with a prompt: the newest turns that fit a token budget.

    Attributes:
        messages: role and content, oldest first (system messages always kept).
        first_id: the oldest message sent (None when none was); where the model's context
            starts in the chat.
        cut: older turns were left out (they did not fit).
        tokens: the estimated tokens of ``messages`` (their text).
        budget: the token budget they had to fit.
        ids: the message id of each of ``messages`` (the same order).
    """

    messages: list[ChatMessage]
    first_id: int | None
    cut: bool
    tokens: int
    budget: int
    ids: tuple[int, ...] = ()


def fit_history(rows_newest_first: Iterable[tuple[int, str, str]], budget: int) -> HistoryWindow:
    """The newest ``(id, role, content)`` rows whose estimated tokens fit ``budget``,
    stopping at the first that does not (so what is sent is one unbroken stretch of the
    chat); system messages are kept whatever their age, their tokens counted first. A
    stretch that would start with a reply (its question cut off) starts after it."""
    kept: list[tuple[int, str, str]] = []
    system: list[tuple[int, str, str]] = []
    used = 0
    cut = False
    for mid, role, content in rows_newest_first:
        if role == "system":
            system.append((mid, role, content))
            continue
        if cut:
            continue  # only system messages are still wanted
        cost = estimate_tokens(content)
        if used + cost > budget:
            cut = True
            continue
        kept.append((mid, role, content))
        used += cost
    if cut and kept and kept[-1][1] == "assistant":
        used -= estimate_tokens(kept.pop()[2])
    system_tokens = sum(estimate_tokens(c) for _, _, c in system)
    ordered = sorted([*kept, *system], key=lambda r: _id_order(r[0]))
    first = next((mid for mid, role, _ in ordered if role != "system"), None)
    return HistoryWindow(
        [ChatMessage(role, content) for _, role, content in ordered],  # type: ignore[arg-type]
        first,
        cut,
        used + system_tokens,
        budget,
        tuple(mid for mid, _, _ in ordered),
    )


def _id_order(mid: int) -> tuple[int, int]:
    """Written rows (positive ids) before provisional ones (-1, -2...: newer, in order)."""
    return (0, mid) if mid >= 0 else (1, -mid)


@dataclass(frozen=True, slots=True)
class DeletedConversation:
    """Everything needed to undo a delete: ``ConversationStore.restore(snapshot)``."""

    conversation: ConversationRow
    messages: tuple[MessageRow, ...]
    # The conversation's system prompt and parameters (``storage.chat_settings``), put back
    # with it.
    settings: dict[str, Any] = field(default_factory=dict)


def _check_role(role: str) -> str:
    if role not in MESSAGE_ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(MESSAGE_ROLES)}")
    return role


def _check_status(status: str) -> str:
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(MESSAGE_STATUSES)}")
    return status


def _check_title(title: str) -> str:
    text = " ".join(title.split()) if isinstance(title, str) else ""
    if not text:
        raise ValueError("title: a conversation needs a non-empty title")
    return text


def _ref_text(ref: ModelRef | str | None) -> str | None:
    if ref is None:
        return None
    if isinstance(ref, ModelRef):
        return str(ref)
    try:
        return str(ModelRef.parse(ref))
    except ModelRefError as exc:
        raise ValueError(f"default_model_id: {exc}") from None


def _dump_meta(meta: Mapping[str, Any] | None) -> str:
    # default=str: a stray datetime or enum in the chip details must not lose a reply.
    return json.dumps(dict(meta or {}), default=str, ensure_ascii=False)


def _load_meta(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _message_row(r: Sequence[Any]) -> MessageRow:
    """A message from its columns in table order (``_MESSAGE_COLUMNS``): a plain row, whose
    time is still text, or a Core row of ``messages``, whose time SQLAlchemy parsed."""
    return MessageRow(
        id=r[0],
        conversation_id=r[1],
        role=r[2],
        content=r[3],
        status=r[4],
        model_ref=r[5],
        requested_model=r[6],
        error=r[7],
        meta=_load_meta(r[8]),
        created_at=from_time_text(r[9]),
    )


def _conversation_row(r: Sequence[Any]) -> ConversationRow:
    """A conversation from its columns in table order, then its message count (a Core row,
    or a plain one whose times are still text)."""
    return ConversationRow(
        id=r[0],
        title=r[1],
        default_model_id=r[2],
        created_at=from_time_text(r[3]),
        updated_at=from_time_text(r[4]),
        message_count=r[5],
    )


def _snippet(content: str, terms: list[str]) -> str:
    """A short single-line excerpt around the first term found in ``content``."""
    flat = " ".join(content.split())
    found = None
    for term in terms:
        found = re.search(re.escape(term), flat, re.IGNORECASE)
        if found:
            break
    start = found.start() if found else 0
    lo = max(0, start - SNIPPET_BEFORE)
    hi = min(len(flat), start + SNIPPET_AFTER)
    text = flat[lo:hi]
    return ("…" if lo > 0 else "") + text + ("…" if hi < len(flat) else "")


class ConversationStore:
    """Conversations and messages in the local database.

    Args:
        db: an opened ``Database``.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"ConversationStore({self._db!r})"

    @property
    def db(self) -> Database:
        return self._db

    # ---- conversations ---------------------------------------------------------------------

    def _select_conversations(self, counted: bool = True) -> Select[Any]:
        from sqlalchemy import func, literal, select

        from halext_desktop.storage.models import conversations as _conv
        from halext_desktop.storage.models import messages as _msg

        count: Any = (
            select(func.count())
            .select_from(_msg)
            .where(_msg.c.conversation_id == _conv.c.id)
            .scalar_subquery()
            if counted
            else literal(-1)
        )
        return select(
            _conv.c.id,
            _conv.c.title,
            _conv.c.default_model_id,
            _conv.c.created_at,
            _conv.c.updated_at,
            count.label("message_count"),
        )

    def create(
        self,
        title: str = "New chat",
        default_model_id: ModelRef | str | None = None,
        *,
        created_at: datetime | None = None,
    ) -> ConversationRow:
        """A new, empty conversation."""
        title = _check_title(title)
        ref = _ref_text(default_model_id)
        now = created_at or utcnow()
        with self._db.write() as conn:
            when = time_text(now)
            new_id = conn.sql(
                "INSERT INTO conversations (title, default_model_id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (title, ref, when, when),
            ).lastrowid
        assert new_id is not None, "INSERT returned no row id"
        row = self.get(new_id)
        assert row is not None
        return row

    def get(self, conversation_id: int) -> ConversationRow | None:
        with self._db.read() as conn:
            r = conn.sql(_SELECT_CONVERSATION, (conversation_id,)).fetchone()
        return _conversation_row(r) if r is not None else None

    def _require(self, conversation_id: int) -> ConversationRow:
        row = self.get(conversation_id)
        if row is None:
            raise NotFoundError(f"There is no conversation {conversation_id}")
        return row

    def list(
        self, limit: int | None = None, *, offset: int = 0, counted: bool = True
    ) -> builtins.list[ConversationRow]:
        """Conversations, most recently updated first; ``offset`` skips the first ones (a
        page); ``counted=False`` leaves their messages uncounted (``message_count`` -1),
        which at a million messages is most of the cost. Plain SQL: the window's sidebar
        reads it at start, which must not wait for SQLAlchemy."""
        count = _MESSAGE_COUNT if counted else "-1"
        sql = (
            f"SELECT {_CONVERSATION_COLUMNS}, {count} "
            "FROM conversations ORDER BY updated_at DESC, id DESC"
        )
        params: tuple[int, ...] = ()
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params = (limit if limit is not None else -1, offset)  # -1: no limit
        with self._db.read() as conn:
            return [_conversation_row(r) for r in conn.sql(sql, params)]

    def _update_conversation(self, conversation_id: int, **values: Any) -> ConversationRow:
        assert values and _CONVERSATION_FIELDS.issuperset(values), values
        sets = ", ".join(f"{name} = :{name}" for name in values)
        with self._db.write() as conn:
            n = conn.sql(
                f"UPDATE conversations SET {sets} WHERE id = :hx_id",
                {**values, "hx_id": conversation_id},
            ).rowcount
        if n == 0:
            raise NotFoundError(f"There is no conversation {conversation_id}")
        return self._require(conversation_id)

    def rename(self, conversation_id: int, title: str) -> ConversationRow:
        """Change the title (not ``updated_at``: renaming should not reorder the list).

        Raises:
            ValueError: the title is empty.
            NotFoundError: no such conversation.
        """
        return self._update_conversation(conversation_id, title=_check_title(title))

    def set_default_model(
        self, conversation_id: int, ref: ModelRef | str | None
    ) -> ConversationRow:
        """The model reference the conversation's next reply goes to (None = the global
        default)."""
        return self._update_conversation(conversation_id, default_model_id=_ref_text(ref))

    def delete(self, conversation_id: int) -> DeletedConversation:
        """Delete a conversation and its messages; returns a snapshot for ``restore``."""
        from sqlalchemy import delete, select

        from halext_desktop.storage.models import conversations as _conv
        from halext_desktop.storage.models import messages as _msg

        with self._db.write() as conn:
            r = conn.execute(
                self._select_conversations().where(_conv.c.id == conversation_id)
            ).first()
            if r is None:
                raise NotFoundError(f"There is no conversation {conversation_id}")
            msgs = conn.execute(
                select(_msg).where(_msg.c.conversation_id == conversation_id).order_by(_msg.c.id)
            ).all()
            conn.execute(delete(_conv).where(_conv.c.id == conversation_id))
        return DeletedConversation(_conversation_row(r), tuple(_message_row(m) for m in msgs))

    def restore(self, snapshot: DeletedConversation) -> ConversationRow:
        """Undo a delete: put the conversation and its messages back with the same ids.

        Raises:
            ValueError: a conversation with that id exists again.
        """
        from sqlalchemy import insert, select

        from halext_desktop.storage.models import conversations as _conv
        from halext_desktop.storage.models import messages as _msg

        c = snapshot.conversation
        with self._db.write() as conn:
            if conn.execute(select(_conv.c.id).where(_conv.c.id == c.id)).first() is not None:
                raise ValueError(f"conversation {c.id} already exists; nothing to restore")
            conn.execute(
                insert(_conv).values(
                    id=c.id,
                    title=c.title,
                    default_model_id=c.default_model_id,
                    created_at=c.created_at,
                    updated_at=c.updated_at,
                )
            )
            if snapshot.messages:
                conn.execute(
                    insert(_msg),
                    [
                        {
                            "id": m.id,
                            "conversation_id": c.id,
                            "role": m.role,
                            "content": m.content,
                            "status": m.status,
                            "model_ref": m.model_ref,
                            "requested_model": m.requested_model,
                            "error": m.error,
                            "meta": _dump_meta(m.meta),
                            "created_at": m.created_at,
                        }
                        for m in snapshot.messages
                    ],
                )
        return self._require(c.id)

    # ---- search ----------------------------------------------------------------------------

    def search(
        self, text: str, limit: int = 50
    ) -> builtins.list[tuple[ConversationRow, str | None]]:
        """Conversations whose title or any message contains every word of ``text``
        (case-insensitive substrings), the most recent activity first: a title match
        counts from the conversation's last update, a message match from that message.

        Messages are walked newest first and the walk stops once ``limit`` conversations
        are found, so a common word costs what the first hits cost, not every hit
        (``search_begin``/``search_step`` take it in slices, for callers that let other
        work run in between).

        Returns:
            ``(conversation, snippet)`` pairs; the snippet is an excerpt of the newest
            matching message, or None when only the title matched.
        """
        search = self.search_begin(text, limit)
        while not search.done:
            self.search_step(search)
        return self.search_results(search)

    def search_begin(self, text: str, limit: int = 50) -> Search:
        """A search of ``text`` (the title matches found at once; messages by steps)."""
        terms = text.split()
        folded = [t.lower() for t in terms]
        search = Search(terms, folded, limit)
        if not terms or limit <= 0:
            search.done = True
            return search
        long_terms = [t for t in terms if len(t) >= MIN_FTS_TERM]
        search.fts = self._db.has_fts and bool(long_terms)
        if search.fts:
            search.match = " AND ".join(
                dict.fromkeys(_quoted(tri) for t in long_terms for tri in _trigrams(t))
            )
        with self._db.read() as conn:
            search.titles = self._title_hits(conn, terms, folded)
            (top,) = conn.sql("SELECT max(id) FROM messages").fetchone()
        search.before = int(top) + 1 if top is not None else 0
        search.done = search.before <= 0
        return search

    def search_step(self, search: Search, *, rows: int | None = None) -> None:
        """Walk the next slice of messages (newest first) for ``search``: at most ``rows``
        index hits, or ids, are looked at (default: ``search.step``, which grows from
        ``SEARCH_FIRST_STEP_ROWS`` to ``SEARCH_STEP_ROWS``); ``search.done`` once ``limit``
        conversations are found or nothing older is left."""
        if search.done:
            return
        if rows is None:
            rows = search.step
            search.step = min(search.step * 4, SEARCH_STEP_ROWS)
        with self._db.read() as conn:
            if search.fts:
                found = conn.sql(
                    "SELECT m.id, m.conversation_id, m.content, m.created_at "
                    "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                    "WHERE messages_fts MATCH ? AND messages_fts.rowid < ? "
                    "ORDER BY messages_fts.rowid DESC LIMIT ?",
                    (search.match, search.before, rows),
                ).fetchall()
                exhausted = len(found) < rows
                low = found[-1][0] if found else 0
            else:
                low = max(search.before - rows, 0)
                found = conn.sql(
                    "SELECT id, conversation_id, content, created_at FROM messages "
                    f"WHERE id < ? AND id >= ? AND {_prefilter(search.folded)} "
                    "ORDER BY id DESC",
                    (search.before, low, *_prefilter_args(search.folded)),
                ).fetchall()
                exhausted = low == 0
        for mid, cid, content, created_at in found:
            if cid in search.hits or not _contains_all(content, search.folded):
                continue
            search.hits[cid] = (mid, content, _as_utc(created_at))
            if len(search.hits) >= search.limit:
                search.done = True
                break
        search.before = low
        if exhausted:
            search.done = True

    def search_results(self, search: Search) -> builtins.list[tuple[ConversationRow, str | None]]:
        """The conversations ``search`` found so far, most recent activity first."""
        if not search.hits and not search.titles:
            return []
        ids = set(search.hits) | set(search.titles)
        from halext_desktop.storage.models import conversations as _conv

        with self._db.read() as conn:
            convs = {
                c.id: c
                for c in (
                    _conversation_row(r)
                    for r in conn.execute(self._select_conversations().where(_conv.c.id.in_(ids)))
                )
            }

        def activity(c: ConversationRow) -> tuple[datetime, int]:
            """The last update for a title match, the message's time for a message match
            (the later of the two when both match)."""
            times = [c.updated_at] if c.id in search.titles else []
            hit = search.hits.get(c.id)
            if hit is not None:
                times.append(hit[2])
            return max(times, default=c.updated_at), c.id

        ordered = sorted(convs.values(), key=activity, reverse=True)[: search.limit]
        out: builtins.list[tuple[ConversationRow, str | None]] = []
        for c in ordered:
            hit = search.hits.get(c.id)
            out.append((c, _snippet(hit[1], search.terms) if hit is not None else None))
        return out

    def _title_hits(
        self, conn: Conn, terms: builtins.list[str], folded: builtins.list[str]
    ) -> set[int]:
        if self._db.has_fts and all(len(t) >= MIN_FTS_TERM for t in terms):
            # Each term a quoted phrase (so FTS syntax in user text is literal), all required.
            query = " AND ".join(_quoted(t) for t in terms)
            return {
                r[0]
                for r in conn.sql(
                    "SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH ?",
                    (query,),
                )
            }
        # instr() on lower-cased text rather than LIKE: LIKE folds ASCII only, and '%'/'_'
        # in the user's text would be wildcards.
        where = " AND ".join("instr(hx_fold(title), ?) > 0" for _ in folded)
        return {
            r[0] for r in conn.sql(f"SELECT id FROM conversations WHERE {where}", tuple(folded))
        }

    # ---- messages --------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        status: str = "ok",
        model_ref: str | None = None,
        requested_model: str | None = None,
        meta: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
        writer: str | None = None,
    ) -> MessageRow:
        """Append a message (and mark the conversation as just updated).

        Args:
            writer: the session writing a reply still in flight (``storage.session``).

        Raises:
            ValueError: unknown role or status.
            NotFoundError: no such conversation.
        """
        now = created_at or utcnow()
        values: dict[str, Any] = {
            "conversation_id": conversation_id,
            "role": _check_role(role),
            "content": content,
            "status": _check_status(status),
            "model_ref": model_ref,
            "requested_model": requested_model,
            "error": None,
            "meta": _dump_meta(meta),
            "created_at": time_text(now),
            "writer": writer,
        }
        with self._db.write() as conn:
            self._touch(conn, conversation_id, now)
            new_id = conn.sql(_INSERT_MESSAGE, values).lastrowid
        assert new_id is not None, "INSERT returned no row id"
        return MessageRow(
            id=new_id,
            conversation_id=conversation_id,
            role=role,
            content=content,
            status=status,
            model_ref=model_ref,
            requested_model=requested_model,
            error=None,
            meta=_load_meta(values["meta"]),
            created_at=now,
        )

    @staticmethod
    def _touch(conn: Conn, conversation_id: int, when: datetime) -> None:
        n = conn.sql(
            "UPDATE conversations SET updated_at = ? WHERE id = ?",
            (time_text(when), conversation_id),
        ).rowcount
        if n == 0:
            raise NotFoundError(f"There is no conversation {conversation_id}")

    def add_messages_bulk(
        self,
        conversation_id: int,
        rows: Iterable[tuple[str, str] | Mapping[str, Any]],
    ) -> int:
        """Append many messages in one transaction (imports, benchmarks, tests).

        Each row is ``(role, content)`` or a mapping with ``role``, ``content`` and
        optionally ``status``, ``model_ref``, ``requested_model``, ``error``, ``meta``,
        ``created_at``. Returns how many were added.
        """
        from sqlalchemy import insert

        from halext_desktop.storage.models import messages as _msg

        now = utcnow()
        batch: builtins.list[dict[str, Any]] = []
        for row in rows:
            item: Mapping[str, Any] = (
                {"role": row[0], "content": row[1]} if isinstance(row, tuple) else row
            )
            batch.append(
                {
                    "conversation_id": conversation_id,
                    "role": _check_role(item["role"]),
                    "content": item["content"],
                    "status": _check_status(item.get("status", "ok")),
                    "model_ref": item.get("model_ref"),
                    "requested_model": item.get("requested_model"),
                    "error": item.get("error"),
                    "meta": _dump_meta(item.get("meta")),
                    "created_at": item.get("created_at") or now,
                }
            )
        with self._db.write() as conn:
            self._touch(conn, conversation_id, now)
            if batch:
                conn.execute(insert(_msg), batch)
        return len(batch)

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
        writer: str | None = None,
        clear_writer: bool = False,
    ) -> MessageRow:
        """Change the given fields (see ``edit_message``) and return the row as stored.

        Raises:
            ValueError: unknown status.
            NotFoundError: no such message.
        """
        with self._db.write():
            self.edit_message(
                message_id,
                content=content,
                status=status,
                model_ref=model_ref,
                error=error,
                meta=meta,
                meta_patch=meta_patch,
                writer=writer,
                clear_writer=clear_writer,
            )
            row = self.get_message(message_id)  # in the same transaction
        if row is None:
            raise NotFoundError(f"There is no message {message_id}")
        return row

    def edit_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        status: str | None = None,
        model_ref: str | None = None,
        error: str | None = None,
        meta: Mapping[str, Any] | None = None,
        meta_patch: Mapping[str, Any] | None = None,
        writer: str | None = None,
        clear_writer: bool = False,
    ) -> None:
        """Change the given fields without reading the row back (None = leave as is;
        ``meta`` replaces the whole dict, ``meta_patch`` sets some of its keys).

        Args:
            writer: the session writing the reply from now on.
            clear_writer: the reply is no longer in flight: forget its session.

        Raises:
            ValueError: unknown status.
            NotFoundError: no such message.
        """
        values: dict[str, Any] = {}
        if content is not None:
            values["content"] = content
        if status is not None:
            values["status"] = _check_status(status)
        if model_ref is not None:
            values["model_ref"] = model_ref
        if error is not None:
            values["error"] = error
        if writer is not None:
            values["writer"] = writer
        elif clear_writer:
            values["writer"] = None
        with self._db.write() as conn:
            if meta_patch:
                if meta is None:
                    old = conn.sql(
                        "SELECT meta FROM messages WHERE id = ?", (message_id,)
                    ).fetchone()
                    if old is None:
                        raise NotFoundError(f"There is no message {message_id}")
                    meta = _load_meta(old[0])
                meta = {**meta, **meta_patch}
            if meta is not None:
                values["meta"] = _dump_meta(meta)
            if not values:
                found = conn.sql("SELECT id FROM messages WHERE id = ?", (message_id,)).fetchone()
                if found is None:
                    raise NotFoundError(f"There is no message {message_id}")
                return
            assert _MESSAGE_FIELDS.issuperset(values), values
            sets = ", ".join(f"{name} = :{name}" for name in values)
            n = conn.sql(
                f"UPDATE messages SET {sets} WHERE id = :hx_id", {**values, "hx_id": message_id}
            ).rowcount
            if n == 0:
                raise NotFoundError(f"There is no message {message_id}")

    def get_message(self, message_id: int) -> MessageRow | None:
        with self._db.read() as conn:
            r = conn.sql(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        return _message_row(r) if r is not None else None

    def messages(
        self, conversation_id: int, *, limit: int | None = None, before_id: int | None = None
    ) -> builtins.list[MessageRow]:
        """Messages oldest first. With ``limit``: the newest ``limit`` messages older than
        ``before_id`` (or the newest overall), still oldest first — a page for lazy loading.
        Plain SQL: the window reads the last chat at start, which must not wait for
        SQLAlchemy."""
        where = "conversation_id = ?"
        params: list[int] = [conversation_id]
        if before_id is not None:
            where += " AND id < ?"
            params.append(before_id)
        select = f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {where}"
        with self._db.read() as conn:
            if limit is None:
                return [_message_row(r) for r in conn.sql(f"{select} ORDER BY id", params)]
            rows = [
                _message_row(r)
                for r in conn.sql(f"{select} ORDER BY id DESC LIMIT ?", [*params, limit])
            ]
        rows.reverse()
        return rows

    def count_messages(self, conversation_id: int) -> int:
        with self._db.read() as conn:
            (n,) = conn.sql(
                "SELECT count(*) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
        return int(n)

    def delete_messages_from(self, conversation_id: int, message_id: int) -> int:
        """Delete ``message_id`` and every later message of the conversation (edit and
        resend, regenerate). Returns how many were deleted."""
        from sqlalchemy import delete

        from halext_desktop.storage.models import messages as _msg

        with self._db.write() as conn:
            return int(
                conn.execute(
                    delete(_msg).where(
                        _msg.c.conversation_id == conversation_id, _msg.c.id >= message_id
                    )
                ).rowcount
            )

    def metas(self, message_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The ``meta`` of each of these messages that has one (by id)."""
        ids = sorted({int(i) for i in message_ids if i > 0})
        out: dict[int, dict[str, Any]] = {}
        with self._db.read() as conn:
            for start in range(0, len(ids), 500):  # well under SQLite's variable limit
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for mid, meta in conn.sql(
                    f"SELECT id, meta FROM messages WHERE id IN ({marks}) AND meta IS NOT NULL",
                    chunk,
                ):
                    value = _load_meta(meta)
                    if value:
                        out[int(mid)] = value
        return out

    def history_window(
        self, conversation_id: int, budget: int, before_message_id: int | None = None
    ) -> HistoryWindow:
        """The newest turns of the dialogue (``history``'s rows) that fit ``budget``
        estimated tokens, system messages always kept (``fit_history``). Reads newest
        first and stops at the first turn that does not fit: a long chat is not loaded."""
        where = "conversation_id = ? AND status IN ({}) AND trim(content, ' \t\r\n') != ''".format(
            ", ".join("?" for _ in HISTORY_STATUSES)
        )
        args: list[Any] = [conversation_id, *HISTORY_STATUSES]
        if before_message_id is not None:
            where += " AND id < ?"
            args.append(before_message_id)
        with self._db.read() as conn:
            cursor = conn.sql(
                f"SELECT id, role, content FROM messages WHERE {where} ORDER BY id DESC",
                tuple(args),
            )
            try:
                window = fit_history(_until_cut(cursor, budget), budget)
            finally:
                cursor.close()
            if window.cut:
                # Older system messages, which the walk stopped before reaching.
                oldest = window.first_id if window.first_id is not None else 0
                older_system = [
                    (r[0], r[1], r[2])
                    for r in conn.sql(
                        f"SELECT id, role, content FROM messages WHERE {where} "
                        "AND role = 'system' AND id < ? ORDER BY id",
                        (*args, oldest),
                    )
                ]
                if older_system:
                    window = _with_system(window, older_system)
        return window

    def history(
        self,
        conversation_id: int,
        before_message_id: int | None = None,
        *,
        limit: int | None = None,
    ) -> builtins.list[ChatMessage]:
        """The dialogue to send with the next prompt: role and content of ``ok`` and
        ``stopped`` messages, oldest first, without error/blocked/pending/empty ones.

        Args:
            before_message_id: only messages older than this one.
            limit: only the newest ``limit`` of them.
        """
        from sqlalchemy import func, select

        from halext_desktop.storage.models import messages as _msg

        stmt = select(_msg.c.role, _msg.c.content).where(
            _msg.c.conversation_id == conversation_id,
            _msg.c.status.in_(HISTORY_STATUSES),
            # Whitespace-only replies are empty too (in SQL, so ``limit`` counts real turns).
            func.trim(_msg.c.content, " \t\r\n") != "",
        )
        if before_message_id is not None:
            stmt = stmt.where(_msg.c.id < before_message_id)
        stmt = stmt.order_by(_msg.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [ChatMessage(r.role, r.content) for r in reversed(rows)]


def _until_cut(rows: Iterable[Any], budget: int) -> Iterable[tuple[int, str, str]]:
    """Rows as ``fit_history`` takes them, newest first, ending one row after the budget
    is used up (that row shows that older ones were cut; later rows are not read)."""
    used = 0
    for r in rows:
        yield (r[0], r[1], r[2])
        if r[1] != "system":
            used += estimate_tokens(r[2])
            if used > budget:
                return


def _with_system(window: HistoryWindow, system: list[tuple[int, str, str]]) -> HistoryWindow:
    """``window`` with older system messages put first (their tokens added)."""
    extra = [ChatMessage(role, content) for _, role, content in system]  # type: ignore[arg-type]
    tokens = sum(estimate_tokens(c) for _, _, c in system)
    return HistoryWindow(
        [*extra, *window.messages],
        window.first_id,
        window.cut,
        window.tokens + tokens,
        window.budget,
        (*(mid for mid, _, _ in system), *window.ids),
    )

"""Export and import of conversations: JSON (exact, imports back) and Markdown (to read).

JSON holds everything a conversation is: title, model, times, system prompt and
parameters, every message with its role, text, status, the model that answered (and the
one asked), its error, its details (``meta``: reply versions, attachments listed) and its
time; and the attachments themselves (base64, by SHA-256). Importing it makes a new
conversation whose export is the same document, ids aside.

Markdown is for people: each message under a heading with who wrote it, which model
answered and when, its exact text, the other versions of a regenerated reply, and the
attachments (written beside the file when there is one, else named with their hash).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import update

from halext_desktop.storage import versions
from halext_desktop.storage.attachments import AttachmentRef, AttachmentStore, refs_of
from halext_desktop.storage.chat_settings import ChatSettings, ChatSettingsStore
from halext_desktop.storage.chats import Conversations
from halext_desktop.storage.conversations import (
    ConversationRow,
    MessageRow,
    _check_role,
    _check_status,
    _check_title,
    _ref_text,
)
from halext_desktop.storage.models import conversations as _conv
from halext_desktop.storage.ops import ApplyContext, Call

FORMAT_ONE = "halext-desktop/conversation"
FORMAT_ALL = "halext-desktop/conversations"
FORMAT_VERSION = 1


class BadExport(ValueError):
    """A file that is not a conversation export (one line saying what is wrong)."""


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _when(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise BadExport(f"{what}: a time is missing")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadExport(f"{what}: {value!r} is not a time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(slots=True)
class Exported:
    """One conversation as exported (JSON-ready ``data``) and its attachments' bytes."""

    data: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # sha -> (mime, bytes)


async def export_conversation(chats: Conversations, conversation_id: int) -> Exported:
    """Everything of one conversation (raises LookupError when there is none)."""
    conv = await chats.get(conversation_id)
    if conv is None:
        raise LookupError(f"there is no conversation {conversation_id}")
    rows = await chats.messages(conversation_id)
    settings = await chats.chat_settings(conversation_id)
    files: dict[str, tuple[str, bytes]] = {}
    for row in rows:
        for ref in _all_refs(row):
            if ref.sha256 not in files:
                found = await chats.attachment(ref.sha256)
                if found is not None:
                    files[ref.sha256] = found
    data = {
        "title": conv.title,
        "default_model_id": conv.default_model_id,
        "created_at": _iso(conv.created_at),
        "updated_at": _iso(conv.updated_at),
        "settings": settings.to_dict(),
        "messages": [_message_json(m) for m in rows],
        "attachments": {
            sha: {"mime": mime, "size": len(blob), "data": base64.b64encode(blob).decode("ascii")}
            for sha, (mime, blob) in sorted(files.items())
        },
    }
    return Exported(data, files)


def _all_refs(row: MessageRow) -> list[AttachmentRef]:
    refs = refs_of(row.meta)
    for v in row.meta.get("versions") or []:
        if isinstance(v, Mapping):
            refs.extend(refs_of(v.get("meta") or {}))
    return refs


def _message_json(m: MessageRow) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "status": m.status,
        "model_ref": m.model_ref,
        "requested_model": m.requested_model,
        "error": m.error,
        "created_at": _iso(m.created_at),
        "meta": m.meta,
    }


def document(exports: Sequence[Exported], *, all_of_them: bool = False) -> dict[str, Any]:
    """The JSON document of one conversation, or of several (``all_of_them``)."""
    if all_of_them:
        return {
            "format": FORMAT_ALL,
            "version": FORMAT_VERSION,
            "conversations": [e.data for e in exports],
        }
    (one,) = exports
    return {"format": FORMAT_ONE, "version": FORMAT_VERSION, **one.data}


def to_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


async def export_all(chats: Conversations) -> list[Exported]:
    rows = await chats.list()
    return [await export_conversation(chats, c.id) for c in reversed(rows)]


# ---- import -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    title: str
    default_model_id: str | None
    created_at: datetime
    updated_at: datetime
    settings: ChatSettings
    messages: list[dict[str, Any]]
    files: dict[str, tuple[str, bytes]]


def parse_document(doc: Any) -> list[_Parsed]:
    """The conversations a JSON export holds.

    Raises:
        BadExport: not an export of this app, or a malformed one (says what).
    """
    if not isinstance(doc, Mapping):
        raise BadExport("not a Halext Desktop export (expected a JSON object)")
    fmt = doc.get("format")
    if doc.get("version") != FORMAT_VERSION and fmt in (FORMAT_ONE, FORMAT_ALL):
        raise BadExport(f"export version {doc.get('version')!r} is not supported (1 is)")
    if fmt == FORMAT_ONE:
        return [_parse_one(doc, "the conversation")]
    if fmt == FORMAT_ALL:
        items = doc.get("conversations")
        if not isinstance(items, list):
            raise BadExport("'conversations' is not a list")
        return [_parse_one(c, f"conversation {i + 1}") for i, c in enumerate(items)]
    raise BadExport(f"not a Halext Desktop export (format {fmt!r})")


def _parse_one(data: Any, what: str) -> _Parsed:
    if not isinstance(data, Mapping):
        raise BadExport(f"{what} is not an object")
    try:
        title = _check_title(data.get("title"))  # type: ignore[arg-type]
        default = _ref_text(data.get("default_model_id"))
        settings = ChatSettings.from_dict(data.get("settings") or {})
    except (TypeError, ValueError) as exc:
        raise BadExport(f"{what}: {exc}") from None
    files: dict[str, tuple[str, bytes]] = {}
    raw_files = data.get("attachments") or {}
    if not isinstance(raw_files, Mapping):
        raise BadExport(f"{what}: 'attachments' is not an object")
    for sha, item in raw_files.items():
        try:
            blob = base64.b64decode(item["data"], validate=True)
            mime = str(item["mime"])
        except (KeyError, TypeError, binascii.Error):
            raise BadExport(f"{what}: attachment {sha} is malformed") from None
        if hashlib.sha256(blob).hexdigest() != sha:
            raise BadExport(f"{what}: attachment {sha} does not match its hash")
        files[sha] = (mime, blob)
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list):
        raise BadExport(f"{what}: 'messages' is not a list")
    messages = []
    for i, m in enumerate(raw_messages):
        where = f"{what}, message {i + 1}"
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str):
            raise BadExport(f"{where}: needs a role and a text")
        meta = m.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise BadExport(f"{where}: 'meta' is not an object")
        try:
            messages.append(
                {
                    "role": _check_role(str(m.get("role"))),
                    "content": m["content"],
                    "status": _check_status(str(m.get("status") or "ok")),
                    "model_ref": _opt_str(m.get("model_ref")),
                    "requested_model": _opt_str(m.get("requested_model")),
                    "error": _opt_str(m.get("error")),
                    "meta": dict(meta),
                    "created_at": _when(m.get("created_at"), where),
                }
            )
        except ValueError as exc:
            raise BadExport(f"{where}: {exc}") from None
        for ref in refs_of(meta):
            if ref.sha256 not in files:
                raise BadExport(f"{where}: attachment {ref.name} is not in the file")
    return _Parsed(
        title,
        default,
        _when(data.get("created_at"), what),
        _when(data.get("updated_at") or data.get("created_at"), what),
        settings,
        messages,
        files,
    )


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


async def import_document(chats: Conversations, doc: Any) -> list[ConversationRow]:
    """Import every conversation of an export as new ones (one transaction each); returns
    them. Raises BadExport before anything is written when the file is malformed."""
    parsed = parse_document(doc)
    out = []
    for p in parsed:

        def write(ctx: ApplyContext, p: _Parsed) -> ConversationRow:
            store = ctx.conversations
            conv = store.create(p.title, p.default_model_id, created_at=p.created_at)
            blobs = AttachmentStore(store.db)
            for sha, (mime, blob) in p.files.items():
                blobs.put(sha, mime, blob)
            store.add_messages_bulk(conv.id, p.messages)
            if not p.settings.empty:
                ChatSettingsStore(store.db).set(conv.id, p.settings)
            with store.db.write() as conn:
                conn.execute(
                    update(_conv).where(_conv.c.id == conv.id).values(updated_at=p.updated_at)
                )
            row = store.get(conv.id)
            assert row is not None
            return row

        fut = chats.owner.enqueue(Call(write, (p,)))
        row = await asyncio.wrap_future(fut)
        out.append(cast(ConversationRow, row))
    return out


def read_document(path: str | Path) -> Any:
    """The JSON of an export file. Raises BadExport (unreadable, not JSON)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadExport(f"cannot read {p}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadExport(f"{p.name} is not JSON ({exc})") from None


# ---- Markdown ---------------------------------------------------------------------------------


def _fence(text: str) -> str:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _who(m: Mapping[str, Any]) -> str:
    role = m["role"]
    if role == "user":
        return "You"
    if role == "system":
        return "System"
    return "Assistant" + (f" · {m['model_ref']}" if m.get("model_ref") else "")


def _attachment_lines(meta: Mapping[str, Any], links: Mapping[str, str] | None) -> list[str]:
    lines = []
    for ref in refs_of(meta):
        label = f"{ref.name} ({ref.mime}, {ref.size} bytes)"
        if links is not None and ref.sha256 in links:
            target = links[ref.sha256]
            lines.append(f"- ![{ref.name}]({target})" if ref.is_image else f"- [{label}]({target})")
        else:
            lines.append(f"- {label}, sha256 {ref.sha256}")
    return ["", "Attachments:", "", *lines] if lines else []


def to_markdown(exported: Exported, links: Mapping[str, str] | None = None) -> str:
    """A conversation as Markdown. ``links``: sha256 → relative path of attachment files
    written beside it (None: attachments are named with their hash)."""
    d = exported.data
    out = [f"# {d['title']}", ""]
    if d.get("default_model_id"):
        out.append(f"- Model: `{d['default_model_id']}`")
    out.append(f"- Started: {d['created_at']}")
    s = ChatSettings.from_dict(d.get("settings") or {})
    if s.summary():
        out.append(f"- Parameters: {s.summary()}")
    if s.system:
        fence = _fence(s.system)
        out += ["", "System prompt:", "", f"{fence}text", s.system, fence]
    for m in d["messages"]:
        out += ["", f"## {_who(m)} — {m['created_at']}", ""]
        if m["status"] not in ("ok",):
            out += [f"*({m['status']}{': ' + m['error'] if m.get('error') else ''})*", ""]
        out.append(m["content"])
        out += _attachment_lines(m.get("meta") or {}, links)
        shown = versions.info(m.get("meta") or {})
        if shown is not None:
            index, count = shown
            out += ["", f"*Version {index + 1} of {count} is shown; the others:*"]
            for i, v in enumerate(m["meta"]["versions"]):
                if i == index or not isinstance(v, Mapping):
                    continue
                model = f" · {v.get('model_ref')}" if v.get("model_ref") else ""
                out += ["", "<details>", f"<summary>Version {i + 1}{model}</summary>", ""]
                out += [str(v.get("content") or ""), "", "</details>"]
    return "\n".join(out) + "\n"


def extension_for(mime: str) -> str:
    return {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/gif": ".gif",
        "image/webp": ".webp",
        "application/json": ".json",
    }.get(mime, ".txt")


def write_markdown(exports: Sequence[Exported], target: Path) -> list[Path]:
    """Write ``target`` (Markdown) and the attachments into ``<target stem>_files/`` beside
    it (owner-only); returns every path written."""
    folder = target.with_name(target.stem + "_files")
    links: dict[str, str] = {}
    written: list[Path] = []
    for e in exports:
        for sha, (mime, blob) in e.files.items():
            if sha in links:
                continue
            folder.mkdir(mode=0o700, exist_ok=True)
            path = folder / (sha[:16] + extension_for(mime))
            path.write_bytes(blob)
            path.chmod(0o600)
            links[sha] = f"{folder.name}/{path.name}"
            written.append(path)
    text = "\n\n---\n\n".join(to_markdown(e, links) for e in exports)
    target.write_text(text, encoding="utf-8")
    written.insert(0, target)
    return written


async def export_to_file(
    chats: Conversations, conversation_id: int | None, fmt: str, path: str | Path
) -> list[Path]:
    """Export one conversation (or all, ``conversation_id`` None) to ``path`` as
    ``markdown`` or ``json``; returns every file written (Markdown: attachments beside)."""
    if conversation_id is None:
        exports = await export_all(chats)
    else:
        exports = [await export_conversation(chats, conversation_id)]
    target = Path(path)
    if fmt == "json":
        text = to_json(document(exports, all_of_them=conversation_id is None))
        await asyncio.to_thread(target.write_text, text, "utf-8")
        return [target]
    return await asyncio.to_thread(write_markdown, exports, target)


async def import_file(chats: Conversations, path: str | Path) -> list[ConversationRow]:
    """Import a JSON export file as new conversations (raises BadExport)."""
    doc = await asyncio.to_thread(read_document, path)
    return await import_document(chats, doc)

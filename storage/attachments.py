"""Files attached to a message: images for vision models, text and code inlined.

An attachment is stored once per content (``attachments`` table, by SHA-256) and named
from the message's ``meta["attachments"]`` (name, mime, size, sha256, kind). A text or
code file's text goes into the message itself as a fenced block when it is sent (so it is
part of the history the next prompt carries); the attachment is still listed. An image is
sent with its message as the route allows (Ollama ``images``, OpenAI ``image_url`` parts)
and only to a model that says it takes images.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from halext_desktop.storage.db import Database
from halext_desktop.storage.row_values import time_text, utcnow

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # what Ollama and OpenAI take comfortably
MAX_TEXT_BYTES = 512 * 1024  # a text file's text goes into the prompt: keep it sane
MAX_ATTACHMENTS = 10
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
# Fence languages by extension (what a Markdown highlighter understands).
_LANGS = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".tsx": "tsx",
    ".jsx": "jsx",
    ".json": "json",
    ".md": "markdown",
    ".sh": "bash",
    ".bash": "bash",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".rs": "rust",
    ".go": "go",
    ".java": "java",
    ".kt": "kotlin",
    ".rb": "ruby",
    ".php": "php",
    ".swift": "swift",
    ".sql": "sql",
    ".html": "html",
    ".css": "css",
    ".xml": "xml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini",
    ".csv": "csv",
}


class AttachmentError(ValueError):
    """A file that cannot be attached (too large, not an image nor text, unreadable)."""


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """What a message's ``meta["attachments"]`` lists for one file."""

    name: str
    mime: str
    size: int
    sha256: str
    kind: str  # "image" | "text"

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mime": self.mime,
            "size": self.size,
            "sha256": self.sha256,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttachmentRef:
        try:
            ref = cls(
                str(data["name"]),
                str(data["mime"]),
                int(data["size"]),
                str(data["sha256"]),
                str(data["kind"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AttachmentError(f"an attachment entry is malformed ({exc})") from None
        if ref.kind not in ("image", "text") or len(ref.sha256) != 64:
            raise AttachmentError(f"an attachment entry is malformed ({ref.name})")
        return ref


@dataclass(frozen=True, slots=True)
class Prepared:
    """An attachment ready to store and send: its reference and its bytes."""

    ref: AttachmentRef
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


def refs_of(meta: Mapping[str, Any]) -> list[AttachmentRef]:
    """The attachments a message's meta lists (malformed entries are skipped)."""
    out = []
    for item in meta.get("attachments") or []:
        if isinstance(item, Mapping):
            try:
                out.append(AttachmentRef.from_dict(item))
            except AttachmentError:
                continue
    return out


def _sniff_image(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    return f"{max(1, round(n / 1024))} KB"


def prepare_bytes(name: str, data: bytes) -> Prepared:
    """An attachment from bytes (a pasted image, a dropped file).

    Raises:
        AttachmentError: one clear line: too large, or neither an image nor UTF-8 text.
    """
    name = Path(name).name or "attachment"
    digest = hashlib.sha256(data).hexdigest()
    image = _sniff_image(data)
    if image is not None:
        if len(data) > MAX_IMAGE_BYTES:
            raise AttachmentError(
                f"{name} is {_human(len(data))}; images can be at most {_human(MAX_IMAGE_BYTES)}"
            )
        return Prepared(AttachmentRef(name, image, len(data), digest, "image"), data)
    if len(data) > MAX_TEXT_BYTES:
        raise AttachmentError(
            f"{name} is {_human(len(data))}; text files can be at most {_human(MAX_TEXT_BYTES)} "
            "(their text goes into the message)"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise AttachmentError(
            f"{name} is neither an image (PNG, JPEG, GIF, WebP) nor UTF-8 text"
        ) from None
    if b"\x00" in data:
        raise AttachmentError(f"{name} looks like a binary file, not text")
    mime = mimetypes.guess_type(name)[0] or "text/plain"
    if not mime.startswith("text/") and mime not in ("application/json", "application/xml"):
        mime = "text/plain"
    return Prepared(AttachmentRef(name, mime, len(data), digest, "text"), data)


def prepare_file(path: str | Path) -> Prepared:
    """An attachment from a file on disk.

    Raises:
        AttachmentError: unreadable, too large, or neither an image nor text.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise AttachmentError(f"{p.name} is not a file")
        if size > MAX_IMAGE_BYTES:
            raise AttachmentError(
                f"{p.name} is {_human(size)}; attachments can be at most {_human(MAX_IMAGE_BYTES)}"
            )
        data = p.read_bytes()
    except OSError as exc:
        raise AttachmentError(f"cannot read {p}: {exc.strerror or exc}") from None
    return prepare_bytes(p.name, data)


def _fence_for(text: str) -> str:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def inline_text(prompt: str, attachments: Iterable[Prepared]) -> str:
    """The message as sent and stored: the typed text, then each text file as a fenced
    block headed by its name (a fence longer than any backtick run inside)."""
    blocks = []
    for a in attachments:
        if a.ref.kind != "text":
            continue
        text = a.text
        fence = _fence_for(text)
        lang = _LANGS.get(Path(a.ref.name).suffix.lower(), "")
        body = text if text.endswith("\n") else text + "\n"
        blocks.append(f"{a.ref.name}:\n\n{fence}{lang}\n{body}{fence}")
    if not blocks:
        return prompt
    return "\n\n".join([prompt.rstrip("\n"), *blocks]) if prompt.strip() else "\n\n".join(blocks)


class AttachmentStore:
    """The attachments table (owner thread only).

    Args:
        db: an opened ``Database``.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, sha256: str, mime: str, data: bytes, when: datetime | None = None) -> None:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("attachment bytes do not match their sha256")
        with self._db.write() as conn:
            conn.sql(
                "INSERT INTO attachments (sha256, mime, size, data, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (sha256, mime, len(data), data, time_text(when or utcnow())),
            )

    def get(self, sha256: str) -> tuple[str, bytes] | None:
        with self._db.read() as conn:
            r = conn.sql(
                "SELECT mime, data FROM attachments WHERE sha256 = ?", (sha256,)
            ).fetchone()
        return (r[0], bytes(r[1])) if r is not None else None

    def sweep(self) -> int:
        """Delete the attachments no message names any more (their conversations were
        deleted, past Undo); returns how many. Run when the database is idle at start."""
        # Read first: the write lock is taken only when there is something to delete (a
        # start must not hold up another program that is about to write).
        with self._db.read() as conn:
            unused = [r[0] for r in conn.sql(f"SELECT sha256 FROM attachments WHERE {_UNNAMED}")]
        if not unused:
            return 0
        marks = ", ".join("?" for _ in unused)
        with self._db.write() as conn:
            gone = conn.sql(
                f"DELETE FROM attachments WHERE sha256 IN ({marks}) AND {_UNNAMED}", unused
            )
            return int(gone.rowcount or 0)


# No message's meta names the attachment (a sha256 is hex: no LIKE wildcards in it).
_UNNAMED = (
    "NOT EXISTS (SELECT 1 FROM messages WHERE messages.meta LIKE '%' || attachments.sha256 || '%')"
)

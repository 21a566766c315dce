"""A conversation's system prompt and parameters, and the presets the user saves.

``ChatSettings`` is plain data (JSON in ``conversation_settings.data`` and
``chat_presets.data``); ``options()`` turns it into the router's ``ChatOptions`` and
``system`` goes first in the messages sent. Each route carries what its protocol allows
(``routing.types.UNSENDABLE_OPTIONS``); what it cannot carry is said under the reply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any

from halext_desktop.routing.types import ChatOptions
from halext_desktop.storage.db import Database
from halext_desktop.storage.row_values import time_text, utcnow

MAX_SYSTEM_CHARS = 100_000
MAX_PRESET_NAME = 80
# (low, high) of each numeric parameter, as Ollama and OpenAI accept them.
LIMITS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "num_ctx": (1, 10_000_000),
    "max_tokens": (1, 10_000_000),
    "seed": (-(2**63), 2**63 - 1),
}
_INTS = ("num_ctx", "max_tokens", "seed")


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """System prompt and parameters of a conversation (None: the model's own default)."""

    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    num_ctx: int | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        check(self)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def options(self, base: ChatOptions | None = None) -> ChatOptions:
        """``base`` (or no options) with the parameters set here (the others as in
        ``base``)."""
        names = ("temperature", "top_p", "num_ctx", "max_tokens", "seed")
        return replace(
            base or ChatOptions(),
            **{n: getattr(self, n) for n in names if getattr(self, n) is not None},
        )

    def to_dict(self) -> dict[str, Any]:
        """Only what is set (JSON-ready)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ChatSettings:
        """Raises ValueError for an unknown key or a value out of range."""
        data = dict(data or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown chat setting(s): {', '.join(unknown)}")
        return cls(**data)

    def merged(self, **changes: Any) -> ChatSettings:
        """A copy with ``changes`` applied (a value None clears that setting)."""
        return replace(self, **changes)

    def summary(self) -> str:
        """One short line for the chat header: ``temp 0.7 · top-p 0.9 · ctx 8192``."""
        parts = []
        if self.temperature is not None:
            parts.append(f"temp {self.temperature:g}")
        if self.top_p is not None:
            parts.append(f"top-p {self.top_p:g}")
        if self.num_ctx is not None:
            parts.append(f"ctx {self.num_ctx}")
        if self.max_tokens is not None:
            parts.append(f"max {self.max_tokens}")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        return " · ".join(parts)


def check(s: ChatSettings) -> None:
    """Raises ValueError naming the setting and what is allowed."""
    if s.system is not None:
        if not isinstance(s.system, str):
            raise ValueError("system: the system prompt must be text")
        if len(s.system) > MAX_SYSTEM_CHARS:
            raise ValueError(f"system: the system prompt is longer than {MAX_SYSTEM_CHARS} chars")
    for name, (low, high) in LIMITS.items():
        value = getattr(s, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}: {value!r} is not a number")
        if name in _INTS and not isinstance(value, int):
            raise ValueError(f"{name}: {value!r} is not a whole number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name}: {value!r} is not a finite number")
        if not low <= value <= high:
            raise ValueError(f"{name}: {value!r} is not between {low:g} and {high:g}")


def parse_value(name: str, text: str) -> Any:
    """A setting typed by the user (CLI, dialog): None for an empty text.

    Raises:
        ValueError: not a number of the right kind.
    """
    text = text.strip()
    if name == "system":
        return text or None
    if not text:
        return None
    try:
        return int(text) if name in _INTS else float(text)
    except ValueError:
        kind = "a whole number" if name in _INTS else "a number"
        raise ValueError(f"{name}: {text!r} is not {kind}") from None


def dump(settings: ChatSettings) -> str:
    return json.dumps(settings.to_dict(), ensure_ascii=False, sort_keys=True)


def load(text: str | None) -> ChatSettings:
    """Settings from their JSON; a row a newer or damaged app wrote reads as what is valid."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return ChatSettings()
    if not isinstance(data, dict):
        return ChatSettings()
    try:
        return ChatSettings.from_dict(data)
    except (TypeError, ValueError):
        good = {}
        for f in fields(ChatSettings):
            try:
                ChatSettings(**{f.name: data.get(f.name)})
            except (TypeError, ValueError):
                continue
            good[f.name] = data.get(f.name)
        return ChatSettings(**good)


def check_preset_name(name: str) -> str:
    text = " ".join(name.split()) if isinstance(name, str) else ""
    if not text:
        raise ValueError("preset: a preset needs a name")
    if len(text) > MAX_PRESET_NAME:
        raise ValueError(f"preset: the name is longer than {MAX_PRESET_NAME} characters")
    return text


class ChatSettingsStore:
    """The SQL of settings and presets (owner thread only).

    Args:
        db: an opened ``Database``.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, conversation_id: int) -> ChatSettings:
        with self._db.read() as conn:
            row = conn.sql(
                "SELECT data FROM conversation_settings WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
        return load(row[0] if row is not None else None)

    def set(self, conversation_id: int, settings: ChatSettings) -> None:
        with self._db.write() as conn:
            conn.sql(
                "DELETE FROM conversation_settings WHERE conversation_id = ?", (conversation_id,)
            )
            if not settings.empty:
                conn.sql(
                    "INSERT INTO conversation_settings (conversation_id, data) VALUES (?, ?)",
                    (conversation_id, dump(settings)),
                )

    def presets(self) -> list[tuple[str, ChatSettings]]:
        with self._db.read() as conn:
            rows = conn.sql("SELECT name, data FROM chat_presets ORDER BY name").fetchall()
        return [(name, load(data)) for name, data in rows]

    def save_preset(self, name: str, settings: ChatSettings, when: datetime | None = None) -> None:
        name = check_preset_name(name)
        with self._db.write() as conn:
            conn.sql("DELETE FROM chat_presets WHERE name = ?", (name,))
            conn.sql(
                "INSERT INTO chat_presets (name, data, updated_at) VALUES (?, ?, ?)",
                (name, dump(settings), time_text(when or utcnow())),
            )

    def delete_preset(self, name: str) -> bool:
        with self._db.write() as conn:
            return bool(conn.sql("DELETE FROM chat_presets WHERE name = ?", (name,)).rowcount)

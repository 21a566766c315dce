"""What more than one command prints the same way (``app/cli.py``, ``app/cli_assist.py``):
a route failure's line, a usage row as JSON, and text made safe for a terminal."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.types import UsageRecord
from halext_desktop.storage.logfile import see_the_log

if TYPE_CHECKING:
    from halext_desktop.app.core import Core


def explain(core: Core, exc: RouteError) -> str:
    """``exc`` as one line for stderr (or a ``--json`` "error"), with what only the app knows:
    where the log file is (an internal error), and why a sign-in will not outlive the
    command (no keyring)."""
    line = exc.one_line()
    if exc.kind is ErrorKind.INTERNAL:
        # Routing cannot know the log's path (it sits below storage): the front end names it.
        line += f"; {see_the_log()}"
    elif (
        exc.kind is ErrorKind.SIGNED_OUT
        and core.env_credentials is None
        and not core.secrets.persistent
    ):
        line += (
            ". There is no system keyring here, so `halext-desktop login` lasts one command: "
            "set HALEXT_USERNAME and HALEXT_PASSWORD instead"
        )
    return line


def usage_json(row: UsageRecord) -> dict[str, Any]:
    """A usage row as JSON-able values (datetimes ISO, enums by value)."""
    d = asdict(row)
    for key, value in d.items():
        if isinstance(value, datetime):
            d[key] = value.isoformat()
        elif isinstance(value, Enum):
            d[key] = value.value
    return d


# C0 controls (but tab and line feed), DEL, C1 controls, and the bidirectional overrides
# that can make a line read differently from what it holds.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x0A:
        return " "
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_line(text: str) -> str:
    """``text`` for one line of a terminal: what came from a server or a file (model names,
    error messages) can hold escape sequences that recolour, retitle or rewrite the
    terminal; every control character is shown escaped (``\\x1b``), a line break as a space."""
    return _UNSAFE_LINE.sub(_escape, text)


def safe_text(text: str) -> str:
    """A reply for a terminal: line breaks and tabs stay, other controls are escaped."""
    return _UNSAFE.sub(_escape, text)

"""What more than one command prints the same way (``app/cli.py``, ``app/cli_assist.py``):
a route failure's line, and a usage row as JSON."""

from __future__ import annotations

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

"""The diagnostics log: one rotating file in the data folder that a user can send us.

Configured once, at start-up, by the CLI and the window alike (``setup_logging``), with
``force=True`` so no earlier ``basicConfig`` (a library's, or an import's) decides what is
kept. What it holds: INFO and up by default, everything with ``--debug`` /
``HALEXT_DEBUG=1``. What it never holds: secrets and message text. Errors are logged with
their type and our own words; SQL parameters are hidden by the engine
(``hide_parameters``), and a filter masks anything shaped like a bearer token or a JWT as a
last line of defence.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from halext_desktop.storage.paths import log_dir

LOG_NAME = "halext-desktop.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 3
DEBUG_ENV = "HALEXT_DEBUG"
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"

# Libraries that log every request at INFO (URLs are fine, but a line per token is noise).
_CHATTY = ("httpx", "httpcore", "openai", "httpx2", "alembic.runtime.migration", "asyncio")

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # a JWT
    re.compile(r"(?i)((?:api[_-]?key|password|token)\s*[=:]\s*)\S+"),
)


def log_path() -> Path:
    """The current log file (``<data_dir>/logs/halext-desktop.log``); named in every message
    that says "see the log"."""
    return log_dir() / LOG_NAME


def see_the_log() -> str:
    """The words every "something unexpected happened" message ends with."""
    return f"details are in the log file {log_path()}"


def debug_requested(env: dict[str, str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(DEBUG_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def redact(text: str) -> str:
    """``text`` with bearer tokens, JWTs and ``key=value`` secrets masked."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _private_rotating_file(path: Path, *, level: int) -> logging.Handler:
    """A rotating file whose every generation is readable by its owner only, whatever the
    umask: the log names hosts, models and file paths, which are nobody else's business.

    ``logging.handlers`` is imported here: it pulls in socket, pickle and queue (~10 ms), and
    the window's outline paints before logging is set up."""
    import logging.handlers

    class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
        def _open(self):  # type: ignore[no-untyped-def]
            fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.chmod(self.baseFilename, 0o600)  # an older file may have been created wider
            return os.fdopen(fd, self.mode.replace("w", "a"), encoding=self.encoding)

    handler = PrivateRotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8", delay=False
    )
    handler.setLevel(level)
    handler.setFormatter(_RedactingFormatter(_FORMAT))
    return handler


def setup_logging(*, debug: bool = False, console_level: int = logging.WARNING) -> Path | None:
    """Configure logging for this process once; returns the log file's path, or None when
    the file cannot be written (then only the console gets messages, and that is said).

    Args:
        debug: DEBUG everywhere (file and console) instead of INFO in the file.
        console_level: what reaches stderr when not debugging (the CLI keeps its own one-line
            messages and shows only errors; the window shows warnings).
    """
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if debug else console_level)
    console.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    handlers.append(console)
    path: Path | None = log_path()
    problem = None
    try:
        assert path is not None
        handlers.append(
            _private_rotating_file(path, level=logging.DEBUG if debug else logging.INFO)
        )
    except OSError as exc:
        problem, path = exc, None
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, handlers=handlers, force=True
    )
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.captureWarnings(True)
    if problem is not None:
        logging.getLogger(__name__).warning(
            "no log file (%s); logging to the console only", problem
        )
    return path

"""Which threads may touch SQLite: the rule behind "never on the GUI thread, never on the
router's event loop".

All database work runs on one thread, the database owner's (``storage.owner``). Two kinds of
thread must never run it, because a locked or slow database would freeze what the user
sees: the GUI thread (registered by the app with ``forbid_current_thread``) and any thread
running an asyncio event loop (the router's loop thread, ``asyncio.run`` in the CLI), which
is recognised without registration.

``storage.db.Database`` calls ``check`` before every connection it hands out. With
``STRICT`` (the test suite turns it on, and so does ``HALEXT_STRICT_THREADS=1``) a call from
a forbidden thread raises ``WrongThreadError``; otherwise it is logged once with its stack,
so a path that slipped through is found without costing the user their reply.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import traceback

log = logging.getLogger(__name__)

STRICT_ENV = "HALEXT_STRICT_THREADS"
STRICT = os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")

_lock = threading.Lock()
_forbidden: dict[int, str] = {}
_warned: set[str] = set()


class WrongThreadError(RuntimeError):
    """SQLite was about to run on a thread that must never wait for the database."""


def forbid_current_thread(what: str) -> None:
    """Refuse database work on the calling thread from now on (``what`` names it in
    messages, e.g. "the GUI thread")."""
    with _lock:
        _forbidden[threading.get_ident()] = what


def allow_current_thread() -> None:
    """Undo ``forbid_current_thread`` for the calling thread (tests, shutdown)."""
    with _lock:
        _forbidden.pop(threading.get_ident(), None)


def why_forbidden() -> str | None:
    """Why the calling thread must not touch SQLite, or None when it may."""
    with _lock:
        what = _forbidden.get(threading.get_ident())
    if what is not None:
        return what
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return f"a thread running an asyncio event loop ({threading.current_thread().name})"


def check(action: str) -> None:
    """Raise (strict) or log (once per place) when ``action`` would run SQLite on a thread
    that must not wait for it."""
    why = why_forbidden()
    if why is None:
        return
    message = (
        f"{action} on {why}: database work belongs on the database owner's thread "
        "(storage.owner.DbOwner)"
    )
    if STRICT:
        raise WrongThreadError(message)
    where = "".join(traceback.format_stack(limit=8)[:-1])
    with _lock:
        first = where not in _warned
        _warned.add(where)
    if first:
        log.warning("%s\n%s", message, where)

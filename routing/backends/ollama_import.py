"""``import ollama`` that a bad ``OLLAMA_HOST`` cannot crash.

The ``ollama`` package builds a module-level client from ``OLLAMA_HOST`` while it is being
imported, so a malformed value (``127.0.0.1:99999``, ``http://[::1:11434``) makes the import
itself raise, and with it every command and the window. The app never uses that client: each
backend builds its own, from a host the settings layer has already checked
(``storage.settings``), so the variable is hidden from the import and put back at once.
"""

from __future__ import annotations

import os
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING

_lock = threading.Lock()


def _import_ollama() -> ModuleType:
    if "ollama" in sys.modules:
        return sys.modules["ollama"]
    with _lock:
        saved = os.environ.pop("OLLAMA_HOST", None)
        try:
            import ollama as module
        finally:
            if saved is not None:
                os.environ["OLLAMA_HOST"] = saved
    return module


if TYPE_CHECKING:
    import ollama
else:
    ollama = _import_ollama()

__all__ = ["ollama"]

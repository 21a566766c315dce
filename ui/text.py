"""Text from the core as the window shows it.

Messages and hints are written once, for the command line too, where a command to run is
set in backticks (``is `ollama serve` running?``). A label shows no Markdown: there the
command is quoted instead (``is “ollama serve” running?``).
"""

from __future__ import annotations

import re

_CODE = re.compile(r"`([^`\n]+)`")


def plain(text: str) -> str:
    """``text`` for a label: commands in backticks become quoted (“ollama serve”)."""
    return _CODE.sub(r"“\1”", text) if "`" in text else text

"""Files handed to the app at start (a file manager's "Open with", a drop on the launcher):
turned into a draft for the message box. Qt-free, so it is easy to test.

Text and code files become fenced blocks (the way people paste code into a chat); what is
not a readable text file is named in one line instead of being silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

# A draft is for a message: a bigger file would swamp the model's context and the composer.
MAX_TEXT_BYTES = 256 * 1024

_LANGS = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".json": "json",
    ".md": "markdown",
    ".sh": "bash",
    ".rs": "rust",
    ".go": "go",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".java": "java",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".html": "html",
    ".css": "css",
    ".sql": "sql",
}


@dataclass
class Draft:
    """What the opened files give: the text for the message box and one line per file
    that could not be used."""

    text: str = ""
    problems: list[str] = field(default_factory=list)


def local_path(arg: str) -> Path | None:
    """A command-line argument as a local path: a ``file://`` URL (what ``%U`` passes) or a
    plain path; None for any other URL."""
    if "://" not in arg:
        return Path(arg).expanduser()
    parts = urlsplit(arg)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parts.path))


def draft_from_files(args: list[str]) -> Draft:
    draft = Draft()
    blocks: list[str] = []
    for arg in args:
        path = local_path(arg)
        if path is None:
            draft.problems.append(f"{arg} is not a local file; only files can be opened")
            continue
        if not path.is_file():
            draft.problems.append(f"{path} was not found")
            continue
        try:
            size = path.stat().st_size
            if size > MAX_TEXT_BYTES:
                draft.problems.append(
                    f"{path.name} is {size / 1024:,.0f} KB; files up to "
                    f"{MAX_TEXT_BYTES // 1024} KB can go into a message"
                )
                continue
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            draft.problems.append(f"{path.name} is not a text file")
            continue
        except OSError as exc:
            draft.problems.append(f"{path.name} could not be read: {exc.strerror or exc}")
            continue
        fence = "````" if "```" in text else "```"
        lang = _LANGS.get(path.suffix.lower(), "")
        blocks.append(f"{path.name}:\n{fence}{lang}\n{text.rstrip(chr(10))}\n{fence}")
    draft.text = "\n\n".join(blocks)
    return draft

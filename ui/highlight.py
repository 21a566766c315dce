"""Syntax highlighting of code blocks with Pygments, for the chat's QTextDocument rich text.

Only a *closed* block is highlighted (ui/markdown.py decides): the block a reply is still
streaming into is shown plain, so a flush costs no lexing. A closed block is lexed once:
the rendered spans are kept in a small LRU keyed by (language, code, dark), so re-rendering
a streaming reply (every ~25 ms) or re-opening a conversation finds them ready.

Exactness: the spans hold exactly the code's characters, in order — the lexer is asked not
to strip, add or expand anything, and a lexer that changed the text anyway (Pygments drops
a leading BOM, for instance) is not used: the block stays plain. So what a selection copies
from a highlighted block is what the model sent.

The colours are Pygments' own styles, one for a light base and one for a dark one, chosen
for contrast on the code block's background (ui/markdown.py's ``code_bg``); the style's
background colours (e.g. for error tokens) are ignored so the block keeps one tint.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.token import _TokenType
from pygments.util import ClassNotFound

LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"
# Rendered blocks kept. Each entry is the block's HTML (a few times the code's size).
CACHE_SIZE = 256
# Longer blocks stay plain: lexing a megabyte of code would stall the GUI thread.
MAX_CHARS = 100_000
# Info strings that name no language.
_PLAIN_NAMES = frozenset({"", "text", "plain", "plaintext", "txt", "none", "output"})

_cache: OrderedDict[tuple[str, str, bool], str | None] = OrderedDict()
_stats = {"hits": 0, "misses": 0}


def highlight(code: str, lang: str, *, dark: bool) -> str | None:
    """The HTML spans of ``code`` highlighted as ``lang``, escaped, for inside a ``<pre>``;
    None when the block stays plain (unknown language, too long, a lexer that would change
    the text)."""
    key = (lang, code, dark)
    if key in _cache:
        _stats["hits"] += 1
        _cache.move_to_end(key)
        return _cache[key]
    _stats["misses"] += 1
    rendered = _render(code, lang, dark)
    _cache[key] = rendered
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return rendered


def cache_stats() -> dict[str, int]:
    """Hits and misses of the block cache since start (or the last ``clear_cache``)."""
    return {**_stats, "size": len(_cache)}


def clear_cache() -> None:
    _cache.clear()
    _stats["hits"] = _stats["misses"] = 0


def known_language(lang: str) -> bool:
    """Does Pygments have a lexer for ``lang`` (an info string's first word)?"""
    return _lexer(lang.strip().lower()) is not None


@lru_cache(maxsize=64)
def _lexer(lang: str) -> Lexer | None:
    if lang in _PLAIN_NAMES:
        return None
    try:
        return get_lexer_by_name(lang, stripnl=False, stripall=False, ensurenl=False, tabsize=0)
    except ClassNotFound:
        return None


@lru_cache(maxsize=2)
def _style(dark: bool) -> StyleMeta:
    return get_style_by_name(DARK_STYLE if dark else LIGHT_STYLE)


@lru_cache(maxsize=512)
def _span_style(ttype: _TokenType, dark: bool) -> str:
    st = _style(dark).style_for_token(ttype)
    parts = []
    if st["color"]:
        parts.append(f"color:#{st['color']}")
    if st["bold"]:
        parts.append("font-weight:600")
    if st["italic"]:
        parts.append("font-style:italic")
    return "; ".join(parts)


def _render(code: str, lang: str, dark: bool) -> str | None:
    if not code or len(code) > MAX_CHARS:
        return None
    lexer = _lexer(lang.strip().lower())
    if lexer is None:
        return None
    pieces: list[str] = []
    seen: list[str] = []
    run_style: str | None = None
    run: list[str] = []

    def close_run() -> None:
        if not run:
            return
        text = html.escape("".join(run), quote=False)
        pieces.append(f'<span style="{run_style}">{text}</span>' if run_style else text)
        run.clear()

    for ttype, value in lexer.get_tokens(code):
        if not value:
            continue
        seen.append(value)
        style = _span_style(ttype, dark)
        if style != run_style:
            close_run()
            run_style = style
        run.append(value)
    close_run()
    if "".join(seen) != code:
        return None
    return "".join(pieces)

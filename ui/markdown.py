"""Markdown → rich text for QTextDocument, with an exact code-block ↔ copy-link mapping.

Parsing is markdown-it-py's (CommonMark, plus GFM tables, strikethrough and task lists from
mdit-py-plugins); this module only turns its token stream into the subset of HTML that
QTextDocument lays out well, with inline styles (QTextDocument has no stylesheet cascade
worth relying on), and adds what a chat needs:

* every code block (fenced or indented) gets a header row with its language and a
  ``copy:n`` link, and its exact text (without fences or indentation) is returned at index
  ``n``, in source order, nested blocks included — copying gives byte for byte what the
  model sent, blank lines, tabs and trailing spaces included;
* closed code blocks are syntax-highlighted (ui/highlight.py, cached); the block a reply is
  still streaming into (an unclosed fence, which markdown-it renders as code to the end by
  construction) stays plain until it closes;
* raw HTML is never interpreted: markdown-it runs with ``html`` off, so tags are text;
  images are never loaded (the alt text is shown, linked to the image's address);
  links are live only for http, https and mailto (others show their text);
* a single newline inside a paragraph is a line break (chat style, as GitHub comments do);
* bare http(s) URLs in text become links.

Why not ``QTextDocument.setMarkdown``: it cannot add the per-block Copy link, loses the
code's language, and would interpret raw HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.tasklists import tasklists_plugin

from halext_desktop.ui.highlight import highlight

COPY_SCHEME = "copy:"
# What a task list item starts with (the glyph, then a no-break space), checked or not, and
# an ordinary item in a task list.
CHECKED_BOX = "\u2611\u00a0"
UNCHECKED_BOX = "\u2610\u00a0"
PLAIN_BULLET = "\u2022\u00a0"

# Monospace families, most specific first; Qt takes the first it has.
MONO_FAMILIES = (
    "'JetBrains Mono', 'Cascadia Mono', 'SF Mono', Menlo, Consolas, 'DejaVu Sans Mono', monospace"
)


@dataclass(frozen=True, slots=True)
class _Colors:
    code_bg: str
    code_text: str
    inline_bg: str
    muted: str
    link: str
    quote_bar: str
    table_border: str
    table_head: str


_LIGHT = _Colors(
    code_bg="#f5f6f8",
    code_text="#1f2328",
    inline_bg="#eef0f3",
    muted="#6e7781",
    link="#1d4ed8",
    quote_bar="#d0d7de",
    table_border="#d0d7de",
    table_head="#f3f4f6",
)
_DARK = _Colors(
    code_bg="#1e2024",
    code_text="#e6e6e6",
    inline_bg="#2c2f35",
    muted="#9aa0a6",
    link="#8ab4f8",
    quote_bar="#4a4f57",
    table_border="#3d4148",
    table_head="#24272c",
)


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(tasklists_plugin)
    # Every link is parsed as a link, so an unsafe one shows its text rather than its raw
    # source ("[bad](javascript:…)"); _Renderer decides which become live.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


_MD = _parser()

_BARE_URL = re.compile(r"(?<![\w/\"'=])(https?://[^\s<>\"']*[^\s<>\"'.,;:!?)\]}*_~])")
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
# Inline tokens that are one fixed tag each.
_INLINE_TAGS = {
    "hardbreak": "<br/>",
    "strong_open": "<b>",
    "strong_close": "</b>",
    "em_open": "<i>",
    "em_close": "</i>",
    "s_open": "<s>",
    "s_close": "</s>",
}
_MARGIN_TOP = re.compile(r"margin-top:\d+px")
_MARGIN_BOTTOM = re.compile(r"margin-bottom:\d+px")
_PARA = '<p style="margin-top:0px; margin-bottom:8px">'
_HEADING_SIZE = {1: "x-large", 2: "large", 3: "medium"}
_ALIGN = re.compile(r"text-align:\s*(left|center|right)")


def render_markdown(text: str, *, dark: bool, hard_breaks: bool = True) -> tuple[str, list[str]]:
    """Render chat Markdown to QTextDocument rich text.

    Args:
        text: the message, possibly still streaming (an unclosed fence renders as code).
        dark: pick colours for a dark base.
        hard_breaks: a single newline inside a paragraph is a line break (chat style)
            rather than a space (strict CommonMark).

    Returns:
        (html, code_blocks): code_blocks[n] is the exact text of the block whose copy link
        is ``copy:n``.
    """
    # markdown-it counts lines in the normalised text; the stable prefix is cut by lines.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    base = _stable_prefix(text, dark, hard_breaks)
    tail = text[len(base.prefix) :] if base else text
    env: dict[str, Any] = {}
    tokens = _MD.parse(tail, env)
    if base is not None and env.get("references"):
        # A link reference definition applies to the whole text, earlier blocks included.
        base, tail, env = None, text, {}
        tokens = _MD.parse(text, env)
    colors = _DARK if dark else _LIGHT
    r = _Renderer(colors, dark, hard_breaks, first_code=len(base.codes) if base else 0)
    tail_parts = r.render(tokens)
    parts = (base.parts if base else []) + tail_parts
    codes = (base.codes if base else []) + r.codes
    if len(tail_parts) > 2 and not env.get("references"):
        # Every top-level block but the last two is final: text added later cannot change
        # it. The last can change (a paragraph may turn into a heading or a table, a fence
        # close), and so can the one before it: the last block's first line may still be
        # growing and turn out not to start a block ("```x`" is no fence), joining the
        # block before. Blocks are decided line by line, so the rest stands.
        lines = tail.split("\n")
        cut = sum(len(line) + 1 for line in lines[: r.starts[-2]])
        kept = len(codes) - len(r.codes) + r.code_counts[-3]
        prefix = (base.prefix if base else "") + tail[:cut]
        _remember(_Stable(prefix, dark, hard_breaks, parts[:-2], codes[:kept]))
    if parts:
        # The message's own padding spaces it; outer margins would only add uneven gaps.
        # Each element's own style comes first in its string, so count=1 hits that one.
        parts = list(parts)
        parts[0] = _MARGIN_TOP.sub("margin-top:0px", parts[0], count=1)
        parts[-1] = _MARGIN_BOTTOM.sub("margin-bottom:0px", parts[-1], count=1)
    return f"<html><body>{''.join(parts)}</body></html>", codes


@dataclass(frozen=True, slots=True)
class _Stable:
    """The leading top-level blocks of a text already rendered, which text appended to it
    cannot change (all but the last two; see render_markdown). A streaming reply is
    re-rendered every flush; with this, each flush parses only its last blocks, not the
    whole reply."""

    prefix: str  # the blocks' source, up to the start of the line after them
    dark: bool
    hard_breaks: bool
    parts: list[str]
    codes: list[str]


# The prefixes of the texts rendered last (several replies may stream at once).
_STABLE: list[_Stable] = []
STABLE_KEPT = 8


def _stable_prefix(text: str, dark: bool, hard_breaks: bool) -> _Stable | None:
    best: _Stable | None = None
    for entry in _STABLE:
        if (
            entry.dark == dark
            and entry.hard_breaks == hard_breaks
            and (best is None or len(entry.prefix) > len(best.prefix))
            and text.startswith(entry.prefix)
        ):
            best = entry
    return best


def _remember(entry: _Stable) -> None:
    # A prefix this one extends belongs to the same reply, earlier in its stream: drop it,
    # so each reply holds one entry however long it streams.
    _STABLE[:] = [
        old
        for old in _STABLE
        if not (
            old.dark == entry.dark
            and old.hard_breaks == entry.hard_breaks
            and entry.prefix.startswith(old.prefix)
        )
    ]
    _STABLE.append(entry)
    del _STABLE[:-STABLE_KEPT]


def forget_prefixes() -> None:
    """Drop the remembered prefixes (tests and benches that time a full render)."""
    _STABLE.clear()


def fence_is_closed(token: Token) -> bool:
    """Did markdown-it find the closing fence of this ``fence`` token?

    Its fence rule sets ``map = [first line, line after the block]`` and the content to
    the lines between the fences; a closing fence is one more line in the map.
    """
    if token.map is None:
        return False
    content = token.content
    lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    return token.map[1] - token.map[0] - 2 == lines


class _Renderer:
    """One rendering pass over markdown-it's tokens; collects code blocks in source order."""

    def __init__(self, colors: _Colors, dark: bool, hard_breaks: bool, first_code: int = 0) -> None:
        self.c = colors
        self.dark = dark
        self.hard_breaks = hard_breaks
        self.first_code = first_code  # the number of this pass's first code block
        self.codes: list[str] = []
        # Per rendered top-level part: its first source line, and how many code blocks
        # this pass had collected at its end.
        self.starts: list[int] = []
        self.code_counts: list[int] = []

    # ---- blocks ------------------------------------------------------------------------------

    def render(self, tokens: Sequence[Token]) -> list[str]:
        """The rendered top-level elements, one string each."""
        parts: list[str] = []
        out: list[str] = []
        # Per open list item: has its first paragraph been opened yet (it goes without <p>,
        # so items stay tight), and for each open paragraph whether it wrote a <p>.
        item_fresh: list[bool] = []
        para_tags: list[bool] = []
        bullets: list[bool] = []  # per open list: does it draw its bullets itself?
        part_line = 0
        for i, tok in enumerate(tokens):
            t = tok.type
            if not out and tok.level == 0 and tok.map is not None:
                part_line = tok.map[0]
            if t == "paragraph_open":
                bare = tok.hidden or (bool(item_fresh) and item_fresh[-1])
                if item_fresh:
                    item_fresh[-1] = False
                para_tags.append(not bare)
                if not bare:
                    out.append(_PARA)
            elif t == "paragraph_close":
                if para_tags.pop():
                    out.append("</p>")
            elif t == "inline":
                out.append(self.inline(tok.children or []))
            elif t == "heading_open":
                level = int(tok.tag[1:])
                top = 10 if level <= 2 else 8
                size = _HEADING_SIZE.get(level, "medium")
                out.append(
                    f'<p style="margin-top:{top}px; margin-bottom:4px; font-size:{size}; '
                    f'font-weight:600">'
                )
                if item_fresh:
                    item_fresh[-1] = False
            elif t == "heading_close":
                out.append("</p>")
            elif t in ("bullet_list_open", "ordered_list_open"):
                tag = tok.tag
                start = ""
                if t == "ordered_list_open":
                    number = tok.attrGet("start")
                    if number is not None and int(number) != 1:
                        start = f' start="{int(number)}"'
                # A bullet list of tasks: the boxes stand where the bullets would.
                tasks = t == "bullet_list_open" and "contains-task-list" in str(
                    tok.attrGet("class") or ""
                )
                bullets.append(tasks)
                style = "margin-top:0px; margin-bottom:8px" + (
                    "; list-style-type:none" if tasks else ""
                )
                out.append(f'<{tag}{start} style="{style}">')
                if item_fresh:
                    item_fresh[-1] = False
            elif t in ("bullet_list_close", "ordered_list_close"):
                bullets.pop()
                out.append(f"</{tok.tag}>")
            elif t == "list_item_open":
                task = _task_state(tokens, i)
                out.append("<li>")
                if task is not None:
                    out.append(self._checkbox(task))
                elif bullets and bullets[-1]:
                    out.append(f'<span style="color:{self.c.muted}">{PLAIN_BULLET}</span>')
                item_fresh.append(True)
            elif t == "list_item_close":
                item_fresh.pop()
                out.append("</li>")
            elif t == "blockquote_open":
                out.append(
                    f'<table width="100%" cellspacing="0" cellpadding="0" '
                    f'style="margin-top:2px; margin-bottom:8px; border-collapse:collapse">'
                    f'<tr><td width="3" bgcolor="{self.c.quote_bar}"></td>'
                    f'<td style="padding-left:10px; color:{self.c.muted}">'
                )
                if item_fresh:
                    item_fresh[-1] = False
            elif t == "blockquote_close":
                out.append("</td></tr></table>")
            elif t == "hr":
                out.append('<hr style="margin-top:6px; margin-bottom:6px"/>')
            elif t == "fence":
                info = tok.info.split()
                out.append(
                    self._code_block(tok.content, info[0] if info else "", fence_is_closed(tok))
                )
                if item_fresh:
                    item_fresh[-1] = False
            elif t == "code_block":
                out.append(self._code_block(tok.content, "", True))
                if item_fresh:
                    item_fresh[-1] = False
            elif t == "table_open":
                out.append(
                    f'<table cellspacing="0" cellpadding="5" border="1" '
                    f'style="margin-top:2px; margin-bottom:10px; border-collapse:collapse; '
                    f'border-style:solid; border-color:{self.c.table_border}">'
                )
                if item_fresh:
                    item_fresh[-1] = False
            elif t == "table_close":
                out.append("</table>")
            elif t == "tr_open":
                head = i > 0 and tokens[i - 1].type == "thead_open"
                out.append(f'<tr bgcolor="{self.c.table_head}">' if head else "<tr>")
            elif t == "tr_close":
                out.append("</tr>")
            elif t in ("th_open", "td_open"):
                m = _ALIGN.search(str(tok.attrGet("style") or ""))
                align = m.group(1) if m and m.group(1) != "left" else ""
                attr = f' align="{align}"' if align else ""
                out.append(f"<{tok.tag}{attr}>")
            elif t in ("th_close", "td_close"):
                out.append(f"</{tok.tag}>")
            elif t == "html_block":  # off in the parser; shown as text should it ever come
                out.append(f"{_PARA}{html.escape(tok.content.rstrip(), quote=False)}</p>")
            # thead/tbody open/close: QTextDocument needs neither.
            if tok.level == 0 and tok.nesting <= 0 and out:
                parts.append("".join(out))
                self.starts.append(part_line)
                self.code_counts.append(len(self.codes))
                out.clear()
        if out:
            parts.append("".join(out))
            self.starts.append(part_line)
            self.code_counts.append(len(self.codes))
        return parts

    def _checkbox(self, checked: bool) -> str:
        """A task's box, drawn as text: Qt's own list markers lose the tick when painted
        through a style (the delegate's painter), and text copies as what it shows."""
        if checked:
            return f'<span style="color:{self.c.link}">{CHECKED_BOX}</span>'
        return f'<span style="color:{self.c.muted}">{UNCHECKED_BOX}</span>'

    def _code_block(self, content: str, lang: str, closed: bool) -> str:
        # markdown-it ends a block's content with the newline of its last line.
        code = content[:-1] if content.endswith("\n") else content
        index = self.first_code + len(self.codes)
        self.codes.append(code)
        c = self.c
        label = html.escape(lang) if lang else "code"
        body = highlight(code, lang, dark=self.dark) if closed and lang else None
        if body is None:
            body = html.escape(code, quote=False)
        # A trailing empty line would be swallowed by the rich-text parser; keep its height.
        if not code:
            body = "&nbsp;"
        elif code.endswith("\n"):
            body += " "
        # ...and so would a leading one (HTML drops a newline right after <pre>).
        if code.startswith("\n"):
            body = "\n" + body
        return (
            f'<table width="100%" cellspacing="0" cellpadding="0" bgcolor="{c.code_bg}" '
            f'style="margin-top:2px; margin-bottom:10px">'
            f'<tr><td style="padding:5px 10px 1px 10px">'
            f'<span style="color:{c.muted}; font-size:small">{label}</span></td>'
            f'<td align="right" style="padding:5px 10px 1px 10px">'
            f'<a href="{COPY_SCHEME}{index}" style="color:{c.link}; text-decoration:none; '
            f'font-size:small">Copy</a></td></tr>'
            f'<tr><td colspan="2" style="padding:4px 10px 8px 10px">'
            f'<pre style="margin:0; white-space:pre-wrap; font-family:{MONO_FAMILIES}; '
            f'color:{c.code_text}">{body}</pre></td></tr></table>'
        )

    # ---- inline ------------------------------------------------------------------------------

    def inline(self, children: Sequence[Token]) -> str:
        """Escaped rich text of an inline token's children."""
        c = self.c
        out: list[str] = []
        links: list[bool] = []  # per open link: did it write an <a>?
        after_checkbox = False
        for tok in children:
            t = tok.type
            if t in ("text", "text_special"):
                value = tok.content
                if after_checkbox:
                    value = value.removeprefix(" ")
                if any(links):
                    out.append(html.escape(value, quote=False))
                else:
                    out.append(self._text(value))
            elif t == "code_inline":
                # The hair spaces pad the tint; outside <code> they stay hair-thin.
                out.append(
                    f'<span style="background-color:{c.inline_bg}">&#8202;'
                    f'<code style="font-family:{MONO_FAMILIES}">'
                    f"{html.escape(tok.content, quote=False)}</code>&#8202;</span>"
                )
            elif t == "softbreak":
                out.append("<br/>" if self.hard_breaks else " ")
            elif t in _INLINE_TAGS:
                out.append(_INLINE_TAGS[t])
            elif t == "link_open":
                href = str(tok.attrGet("href") or "")
                live = href.lower().startswith(_SAFE_SCHEMES) and not any(links)
                links.append(live)
                if live:
                    out.append(f'<a href="{html.escape(href, quote=True)}" style="color:{c.link}">')
            elif t == "link_close":
                if links and links.pop():
                    out.append("</a>")
            elif t == "image":
                out.append(self._image(tok, inside_link=any(links)))
            elif t == "html_inline":
                if "task-list-item-checkbox" in tok.content:
                    after_checkbox = True  # drawn by the list item's marker
                    continue
                out.append(html.escape(tok.content, quote=False))
            after_checkbox = False
        return "".join(out)

    def _text(self, value: str) -> str:
        """Escaped text with bare http(s) URLs made links."""
        pieces: list[str] = []
        last = 0
        for m in _BARE_URL.finditer(value):
            pieces.append(html.escape(value[last : m.start()], quote=False))
            url = m.group(1)
            pieces.append(
                f'<a href="{html.escape(url, quote=True)}" style="color:{self.c.link}">'
                f"{html.escape(url, quote=False)}</a>"
            )
            last = m.end()
        pieces.append(html.escape(value[last:], quote=False))
        return "".join(pieces)

    def _image(self, tok: Token, *, inside_link: bool) -> str:
        """An image is never fetched: its alt text (or address), linked to the address."""
        src = str(tok.attrGet("src") or "")
        alt = "".join(child.content for child in tok.children or []) or tok.content
        label = html.escape(f"[image: {alt}]" if alt else f"[image: {src}]", quote=False)
        if inside_link or not src.lower().startswith(_SAFE_SCHEMES):
            return label
        return f'<a href="{html.escape(src, quote=True)}" style="color:{self.c.link}">{label}</a>'


def _task_state(tokens: Sequence[Token], i: int) -> bool | None:
    """For the list item opening at ``tokens[i]``: True/False for a checked/unchecked task
    (mdit-py-plugins' tasklists marks it), None for an ordinary item."""
    if "task-list-item" not in str(tokens[i].attrGet("class") or ""):
        return None
    for tok in tokens[i + 1 :]:
        if tok.type == "inline":
            for child in tok.children or []:
                if child.type == "html_inline" and "task-list-item-checkbox" in child.content:
                    return 'checked="checked"' in child.content
            return None
    return None

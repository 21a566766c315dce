"""Markdown → rich text for QTextDocument, with an exact code-block ↔ copy-link mapping.

A small, linear-time renderer of the Markdown chat models actually write: fenced code
blocks (``` / ~~~ with a language), ATX and setext headings, bullet and numbered lists
(nested), block quotes, GFM pipe tables, rules, paragraphs; inline code, bold, italic,
strikethrough, links and bare URLs. All text is HTML-escaped.

Why not ``QTextDocument.setMarkdown``: it cannot add the per-block "Copy" link, and its
code blocks lose their language; a streaming reply must also show an unclosed fence as
code so far, which this parser does by construction.

Code block ``n`` (in source order, nested ones included) has a link ``copy:n`` and its exact
text, without the fences, at index ``n`` of the returned list.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

COPY_SCHEME = "copy:"

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

# ---- block-level patterns ---------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*(.*?)\s*$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}> ?(.*)$")
_LIST_ITEM = re.compile(r"^( {0,3})([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*)|$)")
_TABLE_SEP = re.compile(r"^ {0,3}\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")

# ---- inline patterns -------------------------------------------------------------------------

# Private-use characters frame placeholders for pieces already rendered (code spans, links).
_PH_OPEN, _PH_CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_PH_OPEN}(\\d+){_PH_CLOSE}")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")
_LINK = re.compile(
    r"\[([^\]\n]+)\]\(\s*<?([^\s()<>]+(?:\([^\s()]*\))?[^\s()<>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_AUTOLINK = re.compile(r"<(https?://[^\s<>]+)>")
_BARE_URL = re.compile(r"(?<![\w/\"'=])(https?://[^\s<>\"']*[^\s<>\"'.,;:!?)\]}*_~])")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_ITALIC_UNDER = re.compile(r"(?<![_\w])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![_\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")

_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_PARA_OPEN = '<p style="margin-top:0px; margin-bottom:8px">'
_MARGIN_TOP = re.compile(r"margin-top:\d+px")
_MARGIN_BOTTOM = re.compile(r"margin-bottom:\d+px")


def render_markdown(text: str, *, dark: bool, hard_breaks: bool = True) -> tuple[str, list[str]]:
    """Render chat Markdown to QTextDocument rich text.

    Args:
        text: the message, possibly still streaming (an unclosed fence renders as code).
        dark: pick colours for a dark base.
        hard_breaks: a single newline inside a paragraph is a line break (chat style, as
            GitHub comments do) rather than a space (strict CommonMark).

    Returns:
        (html, code_blocks): code_blocks[n] is the exact text of the block whose copy link
        is ``copy:n``.
    """
    r = _Renderer(_DARK if dark else _LIGHT, hard_breaks)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    parts = r.block_list(lines)
    if parts:
        # The message's own padding spaces it; outer margins would only add uneven gaps.
        # Each element's own style comes first in its string, so count=1 hits that one.
        parts[0] = _MARGIN_TOP.sub("margin-top:0px", parts[0], count=1)
        parts[-1] = _MARGIN_BOTTOM.sub("margin-bottom:0px", parts[-1], count=1)
    return f"<html><body>{''.join(parts)}</body></html>", r.codes


class _Renderer:
    """One rendering pass; collects code blocks in source order."""

    def __init__(self, colors: _Colors, hard_breaks: bool) -> None:
        self.c = colors
        self.hard_breaks = hard_breaks
        self.codes: list[str] = []

    # ---- blocks ------------------------------------------------------------------------------

    def blocks(self, lines: list[str]) -> str:
        return "".join(self.block_list(lines))

    def block_list(self, lines: list[str]) -> list[str]:
        """The rendered top-level elements of ``lines``, one string each."""
        out: list[str] = []
        i, n = 0, len(lines)
        while i < n:
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            if m := _FENCE_OPEN.match(line):
                fence_char, info = m.group(2)[0], m.group(3)
                if not (fence_char == "`" and "`" in info):
                    i = self._fenced(lines, i, len(m.group(1)), m.group(2), info, out)
                    continue
            if m := _HEADING.match(line):
                level = len(m.group(1))
                out.append(self._heading(level, m.group(2) or ""))
                i += 1
                continue
            if _RULE.match(line):
                out.append(self._rule())
                i += 1
                continue
            if _QUOTE.match(line):
                quoted: list[str] = []
                while i < n and (qm := _QUOTE.match(lines[i])):
                    quoted.append(qm.group(1))
                    i += 1
                out.append(self._quote(quoted))
                continue
            if _LIST_ITEM.match(line):
                i = self._list(lines, i, out)
                continue
            if "|" in line and i + 1 < n and _TABLE_SEP.match(lines[i + 1]) and "|" in lines[i + 1]:
                i = self._table(lines, i, out)
                continue
            i = self._paragraph(lines, i, out)
        return out

    def _starts_block(self, lines: list[str], i: int) -> bool:
        """Does line ``i`` begin a block that interrupts a paragraph?"""
        line = lines[i]
        if not line.strip():
            return True
        if (m := _FENCE_OPEN.match(line)) and not (m.group(2)[0] == "`" and "`" in m.group(3)):
            return True
        if _HEADING.match(line) or _RULE.match(line) or _QUOTE.match(line):
            return True
        if (lm := _LIST_ITEM.match(line)) and lm.group(4):
            # A numbered line only interrupts a paragraph when it starts a list at 1,
            # so "in 2024. we..." stays prose.
            marker = lm.group(2)
            return not marker[0].isdigit() or marker[:-1] == "1"
        return False

    def _paragraph(self, lines: list[str], i: int, out: list[str]) -> int:
        para = [lines[i]]
        i += 1
        n = len(lines)
        while i < n and not self._starts_block(lines, i):
            if (sm := _SETEXT.match(lines[i])) and len(para) >= 1:
                level = 1 if sm.group(1)[0] == "=" else 2
                out.append(self._heading(level, " ".join(p.strip() for p in para)))
                return i + 1
            if (
                "|" in lines[i]
                and i + 1 < n
                and _TABLE_SEP.match(lines[i + 1])
                and "|" in lines[i + 1]
            ):
                break
            para.append(lines[i])
            i += 1
        out.append(f'<p style="margin-top:0px; margin-bottom:8px">{self._para_inline(para)}</p>')
        return i

    def _para_inline(self, para: list[str]) -> str:
        pieces: list[str] = []
        last = len(para) - 1
        for k, raw in enumerate(para):
            line = raw.strip() if k == last else raw.lstrip()
            hard = False
            if k < last:
                if raw.endswith("  ") or (raw.endswith("\\") and not raw.endswith("\\\\")):
                    hard = True
                    line = line.rstrip().removesuffix("\\")
                else:
                    line = line.rstrip()
            pieces.append(line)
            if k < last:
                pieces.append("\n" if (hard or self.hard_breaks) else " ")
        # Inline spans may cross soft line breaks, so the paragraph is one inline run.
        rendered = self.inline("".join(pieces))
        return rendered.replace("\n", "<br/>")

    def _heading(self, level: int, text: str) -> str:
        size = {1: "x-large", 2: "large", 3: "medium"}.get(level, "medium")
        top = 10 if level <= 2 else 8
        return (
            f'<p style="margin-top:{top}px; margin-bottom:4px; font-size:{size}; '
            f'font-weight:600">{self.inline(text.strip())}</p>'
        )

    def _rule(self) -> str:
        return '<hr style="margin-top:6px; margin-bottom:6px"/>'

    def _quote(self, quoted: list[str]) -> str:
        inner = self.blocks(quoted)
        return (
            f'<table width="100%" cellspacing="0" cellpadding="0" '
            f'style="margin-top:2px; margin-bottom:8px; border-collapse:collapse">'
            f'<tr><td width="3" bgcolor="{self.c.quote_bar}"></td>'
            f'<td style="padding-left:10px; color:{self.c.muted}">{inner}</td></tr></table>'
        )

    def _fenced(
        self, lines: list[str], i: int, indent: int, fence: str, info: str, out: list[str]
    ) -> int:
        body: list[str] = []
        i += 1
        n = len(lines)
        closing = re.compile(
            r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$"
        )
        while i < n and not closing.match(lines[i]):
            line = lines[i]
            # Remove up to the opening fence's indentation, as CommonMark does.
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            i += 1
        closed = i < n
        code = "\n".join(body)
        out.append(self._code_block(code, info.split()[0] if info.split() else "", closed))
        return i + 1 if closed else i

    def _code_block(self, code: str, lang: str, closed: bool) -> str:
        index = len(self.codes)
        self.codes.append(code)
        c = self.c
        label = html.escape(lang) if lang else "code"
        escaped = html.escape(code, quote=False)
        # A trailing empty line would be swallowed by the rich-text parser; keep its height.
        if escaped.endswith("\n") or not escaped:
            escaped += "&nbsp;" if not escaped else " "
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
            f'color:{c.code_text}">{escaped}</pre></td></tr></table>'
        )

    def _list(self, lines: list[str], i: int, out: list[str]) -> int:
        first = _LIST_ITEM.match(lines[i])
        assert first is not None
        ordered = first.group(2)[0].isdigit()
        delimiter = first.group(2)[-1]
        base_indent = len(first.group(1))
        items: list[list[str]] = []
        n = len(lines)
        while i < n:
            m = _LIST_ITEM.match(lines[i])
            if (
                not m
                or len(m.group(1)) > base_indent + 1
                or m.group(2)[0].isdigit() != ordered
                or m.group(2)[-1] != delimiter
            ):
                break
            content_indent = len(m.group(1)) + len(m.group(2)) + len(m.group(3) or " ")
            if m.group(3) and len(m.group(3)) > 4:
                content_indent = len(m.group(1)) + len(m.group(2)) + 1
            item = [m.group(4) or ""]
            i += 1
            blank_run = 0
            while i < n:
                line = lines[i]
                if not line.strip():
                    blank_run += 1
                    item.append("")
                    i += 1
                    continue
                indent = len(line) - len(line.lstrip(" "))
                if indent >= content_indent or (indent > base_indent and _LIST_ITEM.match(line)):
                    item.append(line[min(indent, content_indent) :])
                    blank_run = 0
                    i += 1
                    continue
                if (
                    blank_run == 0
                    and not self._starts_block(lines, i)
                    and not _LIST_ITEM.match(line)
                ):
                    item.append(line.strip())  # lazy continuation of the item's paragraph
                    i += 1
                    continue
                break
            while item and not item[-1].strip():
                item.pop()
            items.append(item)
            # A blank line between items keeps the list; anything else unindented ends it.
            if i < n and not _LIST_ITEM.match(lines[i]):
                break
            if blank_run and i < n and not _LIST_ITEM.match(lines[i]):
                break
        tag = "ol" if ordered else "ul"
        start = ""
        if ordered:
            number = int(first.group(2)[:-1])
            if number != 1:
                start = f' start="{number}"'
        rendered = []
        for item in items:
            rendered.append(f"<li>{self._item_body(item)}</li>")
        out.append(
            f'<{tag}{start} style="margin-top:0px; margin-bottom:8px">{"".join(rendered)}</{tag}>'
        )
        return i

    def _item_body(self, item: list[str]) -> str:
        # A single paragraph stays inline so tight lists stay tight.
        simple = all(
            line.strip() and not self._starts_block(item, k) for k, line in enumerate(item) if k
        )
        if simple and item and not _FENCE_OPEN.match(item[0]) and not _LIST_ITEM.match(item[0]):
            return self._para_inline(item) if item[0].strip() else ""
        inner = self.blocks(item)
        # Paragraph margins inside an item would make every item loose; drop the outer <p>.
        if inner.startswith(_PARA_OPEN):
            end = inner.find("</p>")
            inner = inner[len(_PARA_OPEN) : end] + inner[end + 4 :]
        return inner

    def _table(self, lines: list[str], i: int, out: list[str]) -> int:
        header = _split_row(lines[i])
        aligns = [_align(cell) for cell in _split_row(lines[i + 1])]
        i += 2
        rows: list[list[str]] = []
        n = len(lines)
        while i < n and lines[i].strip() and "|" in lines[i]:
            rows.append(_split_row(lines[i]))
            i += 1
        cols = len(header)
        c = self.c

        def cell(tag: str, text: str, k: int) -> str:
            align = aligns[k] if k < len(aligns) else ""
            attr = f' align="{align}"' if align else ""
            return f"<{tag}{attr}>{self.inline(text)}</{tag}>"

        parts = [
            f'<table cellspacing="0" cellpadding="5" border="1" '
            f'style="margin-top:2px; margin-bottom:10px; border-collapse:collapse; '
            f'border-style:solid; border-color:{c.table_border}">',
            f'<tr bgcolor="{c.table_head}">'
            + "".join(cell("th", header[k], k) for k in range(cols))
            + "</tr>",
        ]
        for row in rows:
            cells = (row + [""] * cols)[:cols]
            parts.append("<tr>" + "".join(cell("td", cells[k], k) for k in range(cols)) + "</tr>")
        parts.append("</table>")
        out.append("".join(parts))
        return i

    # ---- inline ------------------------------------------------------------------------------

    def inline(self, text: str) -> str:
        """Escape ``text`` and render its inline Markdown."""
        saved: list[str] = []

        def keep(rendered: str) -> str:
            saved.append(rendered)
            return f"{_PH_OPEN}{len(saved) - 1}{_PH_CLOSE}"

        c = self.c
        text = text.replace(_PH_OPEN, "").replace(_PH_CLOSE, "")

        def code_span(m: re.Match[str]) -> str:
            code = m.group(2)
            if code.startswith(" ") and code.endswith(" ") and code.strip():
                code = code[1:-1]
            # The hair spaces pad the tint; outside <code> they stay hair-thin.
            return keep(
                f'<span style="background-color:{c.inline_bg}">&#8202;'
                f'<code style="font-family:{MONO_FAMILIES}">{html.escape(code, quote=False)}'
                "</code>&#8202;</span>"
            )

        # An escaped backtick opens no code span; other escapes wait until code spans are
        # out, because inside a code span a backslash is just a backslash.
        text = text.replace("\\`", keep("`"))
        text = _CODE_SPAN.sub(code_span, text)
        text = _ESCAPED.sub(lambda m: keep(html.escape(m.group(1))), text)

        def link(m: re.Match[str]) -> str:
            label, url = m.group(1), m.group(2)
            inner = self._emphasis(html.escape(label, quote=False))
            if not url.lower().startswith(_SAFE_SCHEMES):
                return keep(inner)  # javascript:, file:, relative: show the text only
            return keep(
                f'<a href="{html.escape(url, quote=True)}" style="color:{c.link}">{inner}</a>'
            )

        def url(m: re.Match[str]) -> str:
            target = m.group(1)
            return keep(
                f'<a href="{html.escape(target, quote=True)}" style="color:{c.link}">'
                f"{html.escape(target, quote=False)}</a>"
            )

        text = _LINK.sub(link, text)
        text = _AUTOLINK.sub(url, text)
        text = _BARE_URL.sub(url, text)
        text = self._emphasis(html.escape(text, quote=False))
        # Placeholders may nest (a link label with code); resolve until none are left.
        for _ in range(3):
            if _PH_OPEN not in text:
                break
            text = _PLACEHOLDER.sub(lambda m: saved[int(m.group(1))], text)
        return text

    def _emphasis(self, escaped: str) -> str:
        escaped = _BOLD.sub(r"<b>\2</b>", escaped)
        escaped = _ITALIC_STAR.sub(r"<i>\1</i>", escaped)
        escaped = _ITALIC_UNDER.sub(r"<i>\1</i>", escaped)
        return _STRIKE.sub(r"<s>\1</s>", escaped)


def _split_row(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells = re.split(r"(?<!\\)\|", body)
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _align(spec: str) -> str:
    left, right = spec.startswith(":"), spec.endswith(":")
    if left and right:
        return "center"
    if right:
        return "right"
    return ""

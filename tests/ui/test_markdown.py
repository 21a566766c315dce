"""render_markdown: HTML structure, escaping, and the exact code-block ↔ copy-link mapping."""

from __future__ import annotations

import re

import pytest
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication

from halext_desktop.ui.markdown import (
    CHECKED_BOX,
    COPY_SCHEME,
    PLAIN_BULLET,
    UNCHECKED_BOX,
    forget_prefixes,
    render_markdown,
)


def html_of(text: str, **kw: bool) -> str:
    return render_markdown(text, dark=kw.pop("dark", False), **kw)[0]


def copy_links(html: str) -> list[str]:
    return re.findall(r'href="(copy:\d+)"', html)


def test_fenced_code_with_language_keeps_the_exact_code() -> None:
    code = 'def f(a, b):\n    return a < b and "x" & 1\n\n\tindented\t tab  '
    html, codes = render_markdown(f"Intro\n\n```python\n{code}\n```\n\nOutro", dark=False)
    assert codes == [code]
    assert copy_links(html) == ["copy:0"]
    assert ">python</span>" in html
    # Highlighted into spans, still escaped: no raw "<" or "&" of the code reaches the HTML.
    pre = html[html.index("<pre") : html.index("</pre>")]
    assert "&lt;" in pre and "&amp;" in pre and " < " not in pre and " & " not in pre
    assert "<p" in html and "Intro" in html and "Outro" in html


def test_code_blocks_are_numbered_in_source_order_nested_ones_included() -> None:
    text = (
        "```\nfirst\n```\n\n"
        "1. step one\n\n   ```bash\n   echo second\n   ```\n\n"
        "> quoted\n> ```\n> third\n> ```\n\n"
        "~~~~\nfourth with ``` inside\n~~~~\n"
    )
    html, codes = render_markdown(text, dark=False)
    assert codes == ["first", "echo second", "third", "fourth with ``` inside"]
    assert copy_links(html) == [f"{COPY_SCHEME}{n}" for n in range(4)]


def test_an_unclosed_fence_renders_as_code_so_far() -> None:
    html, codes = render_markdown("Here:\n\n```js\nconst a = **1**;\nconst b", dark=False)
    assert codes == ["const a = **1**;\nconst b"]
    assert "<b>1</b>" not in html  # still code, not Markdown
    assert "const a = **1**;" in html


def test_a_fence_needs_three_backticks() -> None:
    html, codes = render_markdown("``not a fence``", dark=False)
    assert codes == []
    assert "not a fence" in html and "<code" in html


def test_html_in_text_is_escaped() -> None:
    html = html_of("<script>alert('x')</script> & <b>bold</b>")
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html and "&amp;" in html


def test_inline_code_is_monospace_escaped_and_not_emphasised() -> None:
    html = html_of("Use `a <b> *not italic*` here")
    code = re.search(r"<code[^>]*>(.*?)</code>", html)
    assert code is not None
    assert "&lt;b&gt; *not italic*" in code.group(1)
    assert "monospace" in html
    assert "<i>" not in html


def test_emphasis_and_strikethrough() -> None:
    html = html_of("**bold** and __also__, *it* and _it2_, ~~gone~~, snake_case_name, 2 * 3 * 4")
    assert "<b>bold</b>" in html and "<b>also</b>" in html
    assert "<i>it</i>" in html and "<i>it2</i>" in html
    assert "<s>gone</s>" in html
    assert "snake_case_name" in html and "2 * 3 * 4" in html


def test_backslash_escapes() -> None:
    html = html_of(r"\*not italic\* and \`tick\`")
    assert "<i>" not in html and "<code" not in html
    assert "*not italic*" in html


def test_lists_bullets_numbers_nesting() -> None:
    html = html_of("- a\n- b\n  - nested\n- c\n\n3. three\n4. four")
    assert html.count("<ul") == 2 and "<ol" in html and 'start="3"' in html
    assert re.search(r"<li>a</li><li>b<ul[^>]*><li>nested</li></ul></li><li>c</li>", html)
    assert "<li>three</li><li>four</li>" in html


def test_numbers_in_prose_are_not_a_list() -> None:
    html = html_of("We shipped it\n2024. was a good year")
    assert "<ol" not in html


def test_headings() -> None:
    html = html_of("# One\n## Two\n###### Six\nSetext\n===\n")
    for text in ("One", "Two", "Six", "Setext"):
        assert re.search(rf'<p style="[^"]*font-weight:600">{text}</p>', html), text
    assert "#" not in re.sub(r"#[0-9a-f]{6}", "", html)


def test_links_and_bare_urls_but_no_javascript() -> None:
    html = html_of(
        "See [docs](https://example.org/a_b?x=1&y=2), https://halext.org/path. "
        "and [bad](javascript:alert(1))"
    )
    assert '<a href="https://example.org/a_b?x=1&amp;y=2"' in html
    assert '<a href="https://halext.org/path"' in html  # the full stop is not part of it
    assert "javascript:" not in html
    assert ">bad<" in html or "bad" in html


def test_quote_rule_and_table() -> None:
    html = html_of("> wise words\n\n---\n\n| a | b |\n|:-|--:|\n| 1 | **2** |\n")
    assert "wise words" in html and "<hr" in html
    assert "<th>a</th>" in html and '<td align="right"><b>2</b></td>' in html


def test_hard_breaks_by_default_soft_on_request() -> None:
    assert "one<br/>two" in html_of("one\ntwo")
    soft = render_markdown("one\ntwo", dark=False, hard_breaks=False)[0]
    assert "one two" in soft
    assert "one<br/>two" in html_of("one  \ntwo", hard_breaks=False)


def test_windows_line_endings() -> None:
    html, codes = render_markdown("a\r\n\r\n```\r\nx\r\ny\r\n```\r\n", dark=False)
    assert codes == ["x\ny"]
    assert "\r" not in html


def test_dark_and_light_use_different_colours() -> None:
    text = "`x`\n\n```\ncode\n```"
    assert render_markdown(text, dark=True)[0] != render_markdown(text, dark=False)[0]


def test_first_and_last_blocks_have_no_outer_margin() -> None:
    html = html_of("# Title\n\ntext\n\n```\ncode\n```")
    body = html.split("<body>", 1)[1]
    assert body.startswith('<p style="margin-top:0px')
    last_table = body.rfind("<table")
    assert "margin-bottom:0px" in body[last_table : body.find(">", last_table)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain",
        "```",
        "```\n",
        "- ",
        "1.",
        "|",
        "| a |\n|---|",
        "> ",
        "**unclosed bold",
        "[link](",
        "`unclosed code",
        "\ue000 0 \ue001 private use",
    ],
)
def test_partial_streaming_text_never_breaks(text: str) -> None:
    html, codes = render_markdown(text, dark=False)
    assert html.startswith("<html><body>") and html.endswith("</body></html>")
    assert len(copy_links(html)) == len(codes)


def test_qt_sees_each_copy_anchor_next_to_its_code(qapp: QApplication) -> None:
    """Through QTextDocument: anchor copy:n sits in the header of the table whose code is
    codes[n], so the delegate's click mapping is exact."""
    text = "```py\nalpha = 1\n```\ntext\n```sh\nbeta --flag\n```"
    html, codes = render_markdown(text, dark=False)
    doc = QTextDocument()
    doc.setHtml(html)
    anchors: dict[str, int] = {}
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            href = fragment.charFormat().anchorHref()
            if href.startswith(COPY_SCHEME):
                anchors[href] = fragment.position()
            it += 1
        block = block.next()
    assert set(anchors) == {"copy:0", "copy:1"}
    plain = doc.toPlainText()
    for n, code in enumerate(codes):
        # The code follows its own Copy link and precedes the next one.
        start = anchors[f"copy:{n}"]
        end = anchors.get(f"copy:{n + 1}", len(plain) + 1)
        assert code in plain[start:end]


# ---- markdown-it: what the maintained parser adds -----------------------------------------


def plain_of(html: str) -> str:
    doc = QTextDocument()
    doc.setHtml(html)
    return doc.toPlainText().replace("\u2029", "\n")


def pre_of(html: str, n: int = 0) -> str:
    """The HTML inside the n-th code block's <pre>."""
    starts = [m.end() for m in re.finditer(r"<pre[^>]*>", html)]
    start = starts[n]
    return html[start : html.index("</pre>", start)]


def test_a_closed_block_is_highlighted_and_keeps_its_exact_text(qapp: QApplication) -> None:
    code = "\n\ndef f(x):\n\treturn  x  # note \n\n\nclass A: pass\n\n"
    html, codes = render_markdown(f"```python\n{code}\n```", dark=False)
    assert codes == [code]
    pre = pre_of(html)
    assert re.search(r'<span style="color:#[0-9A-Fa-f]{6}[^"]*">def</span>', pre)
    # What the document holds (what a selection copies) is the code, character for character.
    assert code in plain_of(html)


def test_the_block_being_streamed_stays_plain_until_it_closes() -> None:
    open_html, open_codes = render_markdown("```python\ndef f():\n    pass", dark=False)
    assert open_codes == ["def f():\n    pass"]
    assert "<span" not in pre_of(open_html)
    closed_html, _ = render_markdown("```python\ndef f():\n    pass\n```", dark=False)
    assert "<span" in pre_of(closed_html)


def test_highlighting_is_cached_per_language_and_text() -> None:
    from halext_desktop.ui import highlight

    highlight.clear_cache()
    text = '```rust\nfn main() { println!("hi"); }\n```\n\nand more words'
    first = render_markdown(text, dark=False)[0]
    assert highlight.cache_stats()["misses"] == 1 and highlight.cache_stats()["hits"] == 0
    for extra in ("", " still", " still streaming"):
        forget_prefixes()  # render it all again, as a reply opened anew is
        render_markdown(text + extra, dark=False)
    assert highlight.cache_stats()["misses"] == 1 and highlight.cache_stats()["hits"] == 3
    assert render_markdown(text, dark=False)[0] == first
    render_markdown(text.replace("rust", "go"), dark=False)  # same text, another language
    assert highlight.cache_stats()["misses"] == 2


def test_unknown_or_no_language_is_plain_but_labelled() -> None:
    html, codes = render_markdown(
        "```klingon-script\nqapla' <x>\n```\n\n```\nnone\n```", dark=False
    )
    assert codes == ["qapla' <x>", "none"]
    assert ">klingon-script</span>" in html and ">code</span>" in html
    assert "<span" not in pre_of(html, 0) and "&lt;x&gt;" in pre_of(html, 0)
    assert "<span" not in pre_of(html, 1)


def test_highlight_colours_differ_between_light_and_dark() -> None:
    text = "```python\nimport os\n```"
    light = set(
        re.findall(r"color:(#[0-9A-Fa-f]{6})", pre_of(render_markdown(text, dark=False)[0]))
    )
    dark = set(re.findall(r"color:(#[0-9A-Fa-f]{6})", pre_of(render_markdown(text, dark=True)[0])))
    assert light and dark and light != dark


def test_indented_code_is_a_code_block_with_a_copy_link() -> None:
    html, codes = render_markdown("Run this:\n\n    make  test\n    \tdone\n\nThen go.", dark=False)
    assert codes == ["make  test\n\tdone"]
    assert copy_links(html) == ["copy:0"]
    assert "Then go." in html


def test_task_lists_are_checkboxes(qapp: QApplication) -> None:
    html, _ = render_markdown(
        "- [ ] write tests\n- [x] ship it\n- plain item\n\n1. [X] numbered\n2. two", dark=False
    )
    assert "list-style-type:none" in html  # the boxes stand where the bullets were
    assert html.count("list-style-type:none") == 1  # not for the numbered list
    # (toPlainText shows the glyph's no-break space as a space)
    lines = [line.replace(" ", "\xa0", 1) for line in plain_of(html).splitlines()]
    assert lines[:3] == [
        f"{UNCHECKED_BOX}write tests",
        f"{CHECKED_BOX}ship it",
        f"{PLAIN_BULLET}plain item",
    ]
    assert f"{CHECKED_BOX}numbered" in lines and "two" in lines
    assert "[x]" not in "".join(lines) and "[ ]" not in "".join(lines)
    assert render_markdown("- [ ] a", dark=True)[0] != render_markdown("- [ ] a", dark=False)[0]


def test_brackets_that_are_no_task_stay_text() -> None:
    html = html_of("- [link-ish] text\n- [ ]no space\n\n[x] not in a list")
    assert CHECKED_BOX not in html and UNCHECKED_BOX not in html
    assert "[link-ish] text" in html and "[x] not in a list" in html


def test_raw_html_is_text_and_images_are_never_loaded(qapp: QApplication) -> None:
    text = (
        '<img src="http://127.0.0.1:9/x.png"> <a href="https://evil.example">click</a>\n\n'
        '<div>\n<iframe src="file:///etc/passwd"></iframe>\n</div>\n\n'
        "![diagram](file:///etc/passwd.png) ![chart](https://example.org/c.png)"
    )
    html = html_of(text)
    assert "<img" not in html and "<iframe" not in html and "<div" not in html
    assert '<a href="https://evil.example"' not in html and 'href="file:' not in html
    assert '&lt;img src="http://127.0.0.1:9/x.png"&gt;' in html
    assert '<a href="https://example.org/c.png"' in html and "[image: chart]" in html
    assert "[image: diagram]" in html
    doc = QTextDocument()
    doc.setHtml(html)
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            assert not it.fragment().charFormat().isImageFormat()
            it += 1
        block = block.next()


def test_loose_lists_nested_quote_and_code_in_items() -> None:
    html, codes = render_markdown(
        "1. first\n\n   more of first\n\n2. second\n   > quoted\n\n   ```sh\n   ls -la\n   ```\n",
        dark=False,
    )
    assert codes == ["ls -la"]
    assert "<ol" in html and "<li>first<p" in html and "more of first" in html
    assert "quoted" in html and html.count("<li") == 2


STREAMED = (
    "# Plan\n\nSome *intro* text\nwith a second line.\n\n"
    "1. first\n2. second\n   - nested [x](https://example.org)\n\n"
    "```python\ndef f():\n    return 1\n```\n\n"
    "Para that becomes a heading\n---\n\n"
    "| a | b |\n|---|--:|\n| 1 | 2 |\n\n"
    "- [ ] task\n- [x] done\n\n"
    "> quote\n> ```js\n> let x\n> ```\n\n"
    "    indented code\n\n"
    "Para then a line that starts like a fence\n```x` y but is not one\n\n"
    "Para\n#\n\nPara\n#hashtag\n\nPara\n-\n\nPara\n- item\n\n"
    "~~~\nopen fence to the end\n\n\ntrailing"
)


@pytest.mark.parametrize("dark", [False, True])
def test_streaming_renders_exactly_what_a_full_render_gives(dark: bool) -> None:
    """A reply re-rendered at every flush reuses the blocks that can no longer change; at
    every point of the stream the result is the same as rendering the text from scratch."""
    forget_prefixes()
    streamed = []
    for cut in range(1, len(STREAMED) + 1):
        streamed.append((cut, render_markdown(STREAMED[:cut], dark=dark)))
    streamed.append((len(STREAMED), render_markdown(STREAMED, dark=dark)))
    for cut, got in streamed:
        forget_prefixes()
        assert got == render_markdown(STREAMED[:cut], dark=dark), STREAMED[:cut]


def test_a_late_link_reference_still_applies_to_earlier_text() -> None:
    forget_prefixes()
    first = "See [the docs][d].\n\nMore text.\n\n"
    render_markdown(first, dark=False)
    html = render_markdown(first + "[d]: https://example.org/docs\n", dark=False)[0]
    assert '<a href="https://example.org/docs"' in html


def test_one_prefix_is_not_reused_for_another_text() -> None:
    forget_prefixes()
    render_markdown("```py\nx = 1\n```\n\nafter", dark=False)
    html, codes = render_markdown("```py\nx = 2\n```\n\nafter", dark=False)
    assert codes == ["x = 2"]
    assert (
        render_markdown("```py\nx = 1\n```\n\nafter", dark=True)[0]
        != render_markdown("```py\nx = 1\n```\n\nafter", dark=False)[0]
    )


def test_a_streaming_reply_keeps_one_remembered_prefix() -> None:
    from halext_desktop.ui import markdown

    forget_prefixes()
    for cut in range(1, len(STREAMED) + 1, 5):
        render_markdown(STREAMED[:cut], dark=False)
    assert len(markdown._STABLE) == 1
    assert STREAMED.startswith(markdown._STABLE[0].prefix)


def test_a_huge_block_stays_plain_but_exact() -> None:
    from halext_desktop.ui import highlight

    code = "x = 1\n" * (highlight.MAX_CHARS // 6 + 1)
    html, codes = render_markdown(f"```python\n{code}```", dark=False)
    assert codes == [code.removesuffix("\n")]
    assert "<span" not in pre_of(html)
    small = render_markdown("```python\nx = 1\n```", dark=False)[0]
    assert "<span" in pre_of(small)


def test_a_model_cannot_forge_a_copy_link() -> None:
    html, codes = render_markdown("[copy me](copy:0) <copy:1>\n\n```\nreal\n```", dark=False)
    assert codes == ["real"]
    assert copy_links(html) == ["copy:0"]  # only the code block's own
    assert "copy me" in html

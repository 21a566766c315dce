"""What does rendering one long Markdown reply cost, old regex parser against markdown-it?

Renders one long reply (prose, lists, a table, a task list, code blocks in several
languages) the way the delegate does: ``render_markdown`` to rich text, then
``QTextDocument.setHtml`` and a layout at a fixed width. Printed, as the median of
``--repeat`` runs:

* the old regex parser (ui/markdown.py as it was at ``--old-commit``, read from git; left
  out when git or that commit is not there);
* markdown-it with highlighting, the first time (every closed block lexed by Pygments);
* markdown-it with highlighting, again (the blocks come from the cache, as while a reply
  streams and its closed blocks are re-rendered every flush);
* the reply streaming: the text cut at 50 points and each prefix rendered, as flushes do
  (markdown-it: the blocks before the last one are reused from the previous flush).

No assertions: a benchmark reports, it does not judge.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_markdown.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QTextDocument  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from halext_desktop.ui import highlight  # noqa: E402
from halext_desktop.ui.markdown import forget_prefixes, render_markdown  # noqa: E402

# The last commit whose ui/markdown.py is the 483-line regex parser.
OLD_COMMIT = "469a25f"

Render = Callable[..., tuple[str, list[str]]]

_PY = '''def merge(a: list[int], b: list[int]) -> list[int]:
    """Merge two sorted lists."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i]); i += 1
        else:
            out.append(b[j]); j += 1
    return out + a[i:] + b[j:]
'''
_TS = """export async function load(url: string): Promise<Item[]> {
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return (await res.json()) as Item[];
}
"""
_SQL = """SELECT model_identifier, count(*) AS n, avg(latency_ms) AS avg_ms
FROM ai_usage_logs
WHERE created_at > datetime('now', '-7 days')
GROUP BY model_identifier ORDER BY n DESC;
"""


def long_reply(sections: int) -> str:
    parts: list[str] = []
    for k in range(sections):
        parts.append(f"## Step {k + 1}: what to change")
        parts.append(
            "The **first** thing is to read the *current* code and note where `merge` is "
            "called; see https://example.org/docs/merge for the contract. " * 3
        )
        parts.append("- keep the order\n- [x] tests pass\n- [ ] benchmarks rerun\n  - nested")
        lang, code = [("python", _PY), ("typescript", _TS), ("sql", _SQL)][k % 3]
        parts.append(f"```{lang}\n{code}```")
        if k % 2 == 0:
            parts.append("| model | ms | tok |\n|:--|--:|--:|\n| llama3.1 | 420 | 312 |")
        parts.append("> A quote with ~~old~~ new text.\n\n1. one\n2. two")
    return "\n\n".join(parts)


def load_old_renderer(commit: str) -> Render | None:
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:ui/markdown.py"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    module = types.ModuleType("old_markdown")
    sys.modules["old_markdown"] = module  # dataclasses look their module up
    exec(compile(source, "old_markdown.py", "exec"), module.__dict__)
    render: Render = module.render_markdown
    return render


def to_document(rendered: str, width: int) -> QTextDocument:
    doc = QTextDocument()
    doc.setUndoRedoEnabled(False)
    doc.setDocumentMargin(0)
    doc.setHtml(rendered)
    doc.setTextWidth(width)
    doc.size()  # forces the layout
    return doc


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median milliseconds of ``fn`` (and of the document step it includes)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    args = parser.parse_args()
    QApplication.instance() or QApplication([])
    text = long_reply(args.sections)
    blocks = text.count("```") // 2
    print(f"markdown: one reply of {len(text):,} characters, {blocks} code blocks")

    def row(label: str, parse: Callable[[], str]) -> None:
        parse_ms, _ = timed(parse, args.repeat)
        full_ms, _ = timed(lambda: to_document(parse(), args.width), args.repeat)
        print(f"  {label:<34} parse {parse_ms:7.2f} ms   parse+layout {full_ms:7.2f} ms")

    old = load_old_renderer(args.old_commit)
    if old is not None:
        row("old regex parser", lambda: old(text, dark=False)[0])
    else:
        print(f"  old regex parser: not measured (no git, or no commit {args.old_commit})")

    def cold() -> str:
        highlight.clear_cache()
        forget_prefixes()
        return render_markdown(text, dark=False)[0]

    def cached() -> str:
        forget_prefixes()  # the whole text parsed again, the code blocks' HTML cached
        return render_markdown(text, dark=False)[0]

    row("markdown-it, highlighting (cold)", cold)
    render_markdown(text, dark=False)
    row("markdown-it, highlighting (cached)", cached)

    cuts = [len(text) * k // 50 for k in range(1, 51)]

    def stream(render: Render) -> Callable[[], None]:
        def go() -> None:
            forget_prefixes()
            for cut in cuts:
                render(text[:cut], dark=False)

        return go

    if old is not None:
        ms, _ = timed(stream(old), max(1, args.repeat // 2))
        print(
            f"  streamed in 50 flushes, old        {ms:7.1f} ms in all, {ms / 50:5.2f} ms a flush"
        )
    highlight.clear_cache()
    ms, _ = timed(stream(render_markdown), max(1, args.repeat // 2))
    print(f"  streamed in 50 flushes, markdown-it {ms:7.1f} ms in all, {ms / 50:5.2f} ms a flush")
    print(f"  highlight cache: {highlight.cache_stats()}")


if __name__ == "__main__":
    main()

"""Screens of issue 11's rendering part, made through the real app:
``python -m tests.helpers.screenshots_rendering OUTDIR`` (under xvfb-run, like
``make screenshots``).

The Ollama test server is given the replies (``queue_reply``) and the turns go through the
real Core, router and database, so the chips carry what Ollama measured (tokens/s) and
each message the time it was written.

1. ``issue11-code-light.png``: a reply with highlighted Python and shell blocks, light theme.
2. ``issue11-code-dark.png``: the same conversation in the dark theme.
3. ``issue11-task-list.png``: a task list (checkboxes), a table and a quote, dark theme.
4. ``issue11-message-details.png``: the header line of a reply — time written, timings,
   tokens, tokens/s — with the tooltip that explains them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import keyring

from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.screenshots import _settle, _wait

REF = "ollama/qwen2.5:7b"

CODE_REPLY = """Here is a merge that keeps the order and never copies more than once:

```python
def merge(a: list[int], b: list[int]) -> list[int]:
    \"\"\"Merge two sorted lists into one sorted list.\"\"\"
    out: list[int] = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:] + b[j:]  # one of these is empty
```

Run the tests with `pytest -q`:

```bash
python -m pytest -q tests/test_merge.py --maxfail=1
```
"""

TASK_REPLY = """Before the release:

- [x] merge the sorting fix
- [x] run the benches again
- [ ] update the changelog
- [ ] tag `v1.4.0`

| step | owner | due |
|:--|:--|--:|
| changelog | Ana | Wed |
| tag | Ben | Thu |

> Ship on Thursday at the latest, or ~~Friday~~ never.
"""


def main(outdir: str) -> int:
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HALEXT_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="halext-shots-")
    keyring.set_keyring(MemoryKeyring())

    from PySide6.QtCore import QCoreApplication, QPoint, QRect
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QToolTip

    from tests.servers.ollama_server import EVAL_NS_PER_TOKEN, OllamaServer

    QCoreApplication.setOrganizationName("halext-screenshots")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")

    from halext_desktop.app.core import Core
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.routing.refs import ModelRef
    from halext_desktop.storage.settings import Settings
    from halext_desktop.ui.chat_model import stats_tooltip
    from halext_desktop.ui.theme import apply_theme

    with OllamaServer() as ollama:
        settings = Settings.load()
        settings.set("halext_url", "")
        settings.set("ollama_hosts", [{"name": "local", "url": ollama.url}])
        settings.set("default_model", REF)
        core = Core(settings=settings)
        lt = LoopThread().start()
        conv = lt.run(core.conversations.create(title="Merge sorted lists"))
        # The server reports 12 ms a token (eval_duration); let it take that long, too, so
        # the timings on the chip and the speed it reports tell the same story.
        ollama.set_token_delay(EVAL_NS_PER_TOKEN / 1e9)

        async def ask(text: str, reply: str) -> None:
            ollama.queue_reply(reply)
            async for _ in core.turns.send(conv.id, text, ModelRef.parse(REF)):
                pass

        lt.run(ask("Write a Python function that merges two sorted lists.", CODE_REPLY))
        lt.run(ask("What is left before the release?", TASK_REPLY))

        apply_theme(app, "light", 0)
        window: Any = build_window(core, lt)
        window.resize(1280, 900)
        window.show()
        window.sidebar.refresh()
        window.sidebar.select(conv.id)
        window._open_conversation(conv.id)
        _wait(app, lambda: window._listing is not None)
        window.picker.set_current(REF)
        view = window.chat_view
        _wait(app, lambda: view.model.rowCount() == 4)
        first_reply = view.model.items[1]
        view.list_view.scrollTo(view.model.index(1))
        _settle(app, 0.6)
        window.grab().save(str(out / "issue11-code-light.png"))

        apply_theme(app, "dark", 0)
        _settle(app, 0.6)
        view.list_view.scrollTo(view.model.index(1))
        _settle(app, 0.4)
        window.grab().save(str(out / "issue11-code-dark.png"))

        view.list_view.scrollToBottom()
        _settle(app, 0.6)
        view.grab().save(str(out / "issue11-task-list.png"))

        # The reply's header: time, timings, tokens, tokens/s — and the tooltip over them.
        apply_theme(app, "light", 0)
        view.list_view.scrollTo(view.model.index(1))
        _settle(app, 0.6)
        rl = view.delegate.layout_for(first_reply)
        row = view.list_view.visualRect(view.model.index(1))
        viewport = view.list_view.viewport()
        stats_at = row.topLeft() + rl.stats.center().toPoint()
        tip_text = stats_tooltip(first_reply.meta)
        QToolTip.showText(viewport.mapToGlobal(stats_at), tip_text, viewport)
        _settle(app, 0.3)
        # Moved so that it ends under the stats' right edge, inside the window.
        for tip in QApplication.topLevelWidgets():
            if tip.inherits("QTipLabel") and tip.isVisible():
                right = viewport.mapToGlobal(row.topLeft() + rl.stats.bottomRight().toPoint())
                tip.move(right - QPoint(tip.width(), -6))
        _settle(app, 0.6)
        # The whole screen, so a tooltip reaching past the window is kept.
        screen = QGuiApplication.primaryScreen()
        pix = screen.grabWindow(0)
        if pix.isNull() or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
            pix = window.grab()
            origin = window.mapToGlobal(QPoint(0, 0))
        else:
            origin = QPoint(0, 0)
        top_left = viewport.mapToGlobal(row.topLeft()) - origin
        area = QRect(top_left + QPoint(int(rl.text_x) - 20, 0), QPoint(0, 0))
        area.setWidth(int(rl.text_w) + 40)
        area.setHeight(int(rl.body.top()) + 150)
        # ...and the tooltip, wherever Qt put it.
        for tip in QApplication.topLevelWidgets():
            if tip.inherits("QTipLabel") and tip.isVisible():
                corner = tip.frameGeometry().topLeft() - origin
                area = area.united(QRect(corner, tip.frameGeometry().size()).adjusted(0, 0, 12, 12))
        pix.copy(area).save(str(out / "issue11-message-details.png"))
        QToolTip.hideText()
        window.close()
        lt.run(core.aclose())
        lt.stop()
        core.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))

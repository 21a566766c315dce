"""Render issue 10's screens into PNG files:
``python -m tests.helpers.screenshots_issue10 OUTDIR``.

The real app wiring (Core, loop thread, bridge, main window) against the protocol test
servers: part of a message selected with the mouse (a real press, drag and release over the
rendered text), two chats streaming at once with the sidebar's marks (one on screen, one in
the background, a third with an unread reply), and Settings → Connections with the Ollama
host overridden by ``OLLAMA_HOST``. Run it under a display
(``xvfb-run -a -s "-screen 0 1600x1000x24"``) or with QT_QPA_PLATFORM=offscreen.
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

REPLY = (
    "Start with the deadline that blocks others: the API review on Tuesday. "
    "Block two hours on Monday morning for it.\n\n"
    "Then clear the small things in one sitting:\n\n"
    "```bash\ngit switch -c review-prep\nmake test\n```\n\n"
    "Leave the slides for Wednesday afternoon."
)


def _char_point(view: Any, mid: int, text: str, *, end: bool = False) -> Any:
    """Where ``text`` starts (or ends, with ``end``) in message ``mid`` as drawn, in the
    list's viewport coordinates."""
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QTextLine

    item = view.model.item_by_id(mid)
    rl = view.delegate.layout_for(item)
    doc = rl.doc
    found = doc.find(text)
    offset = found.selectionEnd() if end else found.selectionStart()
    block = doc.findBlock(offset - (1 if end else 0))
    layout = block.layout()
    pos = offset - block.position()
    line = layout.lineForTextPosition(min(pos, max(0, block.length() - 1)))
    result: Any = line.cursorToX(pos, QTextLine.Edge.Leading)
    x = float(result[0] if isinstance(result, tuple) else result)
    origin = doc.documentLayout().blockBoundingRect(block).topLeft()
    row = view.list_view.visualRect(view.model.index_of(mid)).topLeft()
    point = QPointF(row) + rl.body.topLeft() + origin + QPointF(x, line.y() + line.height() / 2)
    return point.toPoint()


def main(outdir: str) -> int:
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HALEXT_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="halext-shots-")
    keyring.set_keyring(MemoryKeyring())

    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from tests.servers.ollama_server import OllamaServer

    QCoreApplication.setOrganizationName("halext-screenshots")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")

    from halext_desktop.app.core import Core
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.storage.settings import Settings
    from halext_desktop.ui.main_window import MainWindow
    from halext_desktop.ui.theme import apply_theme

    with OllamaServer() as ollama:
        # The app is told where Ollama is the way the ollama tools are: OLLAMA_HOST. The
        # settings still name the default address, which Connections shows as overridden.
        os.environ["OLLAMA_HOST"] = ollama.url.removeprefix("http://")
        settings = Settings.load()
        settings.set("halext_url", "")
        settings.set("ollama_hosts", [{"name": "workstation", "url": "http://127.0.0.1:11434"}])
        core = Core(settings=settings)
        lt = LoopThread().start()

        week = lt.run(core.conversations.create(title="Week planning"))
        lt.run(core.conversations.add_message(week.id, "user", "What should I do first?"))
        lt.run(core.conversations.add_message(week.id, "assistant", REPLY))
        ids: dict[str, int] = {}
        for title in ("Release notes", "SQL question", "Trip to Lisbon"):
            c = lt.run(core.conversations.create(title=title))
            lt.run(core.conversations.add_message(c.id, "user", f"About {title.lower()}"))
            ids[title] = c.id

        apply_theme(app, "light", 0)
        window = build_window(core, lt)
        assert isinstance(window, MainWindow)
        window.resize(1300, 820)
        window.show()
        window.activateWindow()
        _wait(app, lambda: window._listing is not None and bool(window.picker.current()))
        window.sidebar.refresh()
        loaded: list[object] = []
        window.controller.sig_loaded.connect(loaded.append)
        window._open_conversation(week.id)
        _wait(app, lambda: week.id in loaded)
        _settle(app, 0.5)

        # 1. Part of the reply selected with the mouse: press, drag, release.
        view = window.chat_view
        mid = next(
            view.model.item(r).id
            for r in range(view.model.rowCount())
            if view.model.item(r).role == "assistant"
        )
        start = _char_point(view, mid, "Block two hours")
        end = _char_point(view, mid, "make test", end=True)
        viewport = view.list_view.viewport()
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier(0), start)
        QTest.mouseMove(viewport, (start + end) / 2)
        QTest.mouseMove(viewport, end)
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier(0), end)
        _settle(app, 0.4)
        selected = view.selected_text()
        assert selected.startswith("Block two hours") and selected.endswith("make test"), selected
        window.grab().save(str(out / "issue10-selection.png"))

        # 2. Two chats streaming at once: one in the background, one on screen; a third
        # has an unread reply.
        notes, lisbon, sql = ids["Release notes"], ids["Trip to Lisbon"], ids["SQL question"]

        def open_chat(cid: int) -> None:
            window._open_conversation(cid)
            _wait(app, lambda: cid in loaded)

        # A reply that finishes while another chat is on screen: unread.
        ollama.set_token_delay(0.02)
        open_chat(sql)
        window._on_send("Why is my LEFT JOIN dropping rows?")
        _wait(app, lambda: window.controller.streaming)
        open_chat(lisbon)
        _wait(app, lambda: not window.controller.any_streaming, timeout=30)
        # Two replies at once: Lisbon's goes on in the background, the notes' is on screen.
        ollama.set_token_delay(0.2)
        window._on_send("Give me a three-day plan for Lisbon in May.")
        _wait(app, lambda: window.controller.streaming)
        open_chat(notes)
        window._on_send("Draft the release notes for 1.2 from the changelog.")
        _wait(app, lambda: len(window.controller.streaming_conversations()) == 2, timeout=15)
        _settle(app, 1.5)
        window.grab().save(str(out / "issue10-two-streaming.png"))
        window.controller.stop_conversation(lisbon)
        window.controller.stop_conversation(notes)
        _wait(app, lambda: not window.controller.any_streaming, timeout=15)
        ollama.set_token_delay(0)

        # 3. Settings → Connections: the host's address comes from OLLAMA_HOST.
        window.open_settings("connections")
        dialog = window._settings_dialog
        assert dialog is not None
        dialog.resize(820, 700)
        _settle(app, 0.8)
        dialog.grab().save(str(out / "issue10-connections-env.png"))
        dialog.close()

        window.close()
        lt.run(core.aclose())
        lt.stop()
        core.close()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))

"""Screens of the conversation features (issue 11, part b), made as a user meets them:
``python -m tests.helpers.screenshots_conversation OUTDIR`` (under xvfb-run, like
``make screenshots``), against the Ollama protocol test server with a vision model.

1. ``conversation-header-settings.png``: a conversation with a system prompt and
   parameters, shown in the row above the messages, after a reply.
2. ``conversation-settings-dialog.png``: the dialog that edits them, with a saved preset.
3. ``conversation-versions.png``: a reply regenerated twice, showing ‹ 2/3 ›.
4. ``conversation-attachment.png``: an image sent to a vision model (its thumbnail in the
   message), a text file inlined, and another image waiting in the composer.
5. ``conversation-image-refused.png``: the same image for a text-only model: refused
   before sending, the message and the image back in the composer.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import keyring

from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.screenshots import _grab_screen_area, _settle, _wait

VISION = "ollama/llava:7b"
TEXT = "ollama/qwen2.5:7b"


def _fresh_home(ollama_url: str) -> None:
    from halext_desktop.storage.settings import Settings

    os.environ["HALEXT_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="halext-shots-")
    settings = Settings.load()
    settings.set("halext_url", "")
    settings.set("ollama_hosts", [{"name": "local", "url": ollama_url}])
    settings.set("default_model", TEXT)


def _open(app: Any) -> tuple[Any, Any, Any]:
    from halext_desktop.app.core import Core
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread

    core = Core()
    lt = LoopThread().start()
    window: Any = build_window(core, lt)
    window.resize(1300, 820)
    window.show()
    _wait(app, lambda: window._listing is not None)
    _settle(app, 0.4)
    return window, core, lt


def _close(window: Any, core: Any, lt: Any) -> None:
    window.close()
    lt.run(core.aclose())
    lt.stop()
    core.close()


def _send(app: Any, window: Any, text: str) -> None:
    window.composer.set_text(text)
    window.composer.send()
    _wait(app, lambda: not window.controller.streaming, 30)
    _settle(app, 0.3)


def _photo(path: Path) -> None:
    """A small picture to attach (a sunset: sky, sun, sea)."""
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter

    image = QImage(320, 220, QImage.Format.Format_RGB32)
    p = QPainter(image)
    sky = QLinearGradient(QPointF(0, 0), QPointF(0, 140))
    sky.setColorAt(0, QColor("#2b3a67"))
    sky.setColorAt(1, QColor("#f4a259"))
    p.fillRect(QRectF(0, 0, 320, 140), sky)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#ffd166"))
    p.drawEllipse(QPointF(160, 140), 42, 42)
    p.fillRect(QRectF(0, 140, 320, 80), QColor("#1b4965"))
    p.setBrush(QColor("#5fa8d3"))
    for y in (156, 176, 196):
        p.drawRect(QRectF(60 + y % 40, y, 200 - y % 50, 3))
    p.end()
    image.save(str(path))


def main(outdir: str) -> int:
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    keyring.set_keyring(MemoryKeyring())

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from halext_desktop.storage import threads
    from halext_desktop.storage.chat_settings import ChatSettings
    from halext_desktop.ui.theme import apply_theme
    from tests.servers.ollama_server import DEFAULT_MODELS, VISION_MODEL, OllamaServer

    QCoreApplication.setOrganizationName("halext-screenshots")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")
    apply_theme(app, "light", 0)
    threads.forbid_current_thread("the GUI thread")
    files = Path(tempfile.mkdtemp(prefix="halext-shot-files-"))
    photo = files / "sunset.png"
    _photo(photo)
    notes = files / "trip.md"
    notes.write_text("# Trip\n\n- [x] book the ferry\n- [ ] pack the camera\n")

    with OllamaServer(models=[*DEFAULT_MODELS, VISION_MODEL]) as ollama:
        # 1 and 2: the header's system prompt and parameters, and the dialog.
        _fresh_home(ollama.url)
        window, core, lt = _open(app)
        window.picker.set_current(TEXT)
        settings = ChatSettings(
            system="You are a concise travel planner. Answer in short bullet points.",
            temperature=0.4,
            top_p=0.9,
            num_ctx=8192,
            seed=7,
        )
        lt.run(core.conversations.save_preset("Travel planner", settings))
        lt.run(core.conversations.save_preset("Code reviewer", ChatSettings(system="Review code.")))
        window.controller.set_chat_settings(settings)
        _send(app, window, "Plan a weekend on the coast")
        window.grab().save(str(out / "conversation-header-settings.png"))
        window.edit_chat_settings()
        _wait(app, lambda: window.chat_settings_dialog is not None)
        dialog = window.chat_settings_dialog
        dialog.preset_box.setCurrentIndex(dialog.preset_box.findData("Travel planner"))
        _settle(app, 0.4)
        dialog.move(window.geometry().center() - dialog.rect().center())
        _settle(app, 0.3)
        _grab_screen_area(window, out / "conversation-settings-dialog-window.png")
        dialog.grab().save(str(out / "conversation-settings-dialog.png"))
        dialog.reject()
        _close(window, core, lt)

        # 3: versions.
        _fresh_home(ollama.url)
        window, core, lt = _open(app)
        window.picker.set_current(TEXT)
        for text in (
            "Try **Lisbon**: trams, tiles and the river at sunset.",
            "Try **Porto**: the Douro, bridges and a slow lunch by the water.",
            "Try **Nazaré**: a fishing village with the biggest waves in Europe.",
        ):
            ollama.queue_reply(text)
        _send(app, window, "One city for a short break, in one sentence?")
        for _ in range(2):
            window.controller.regenerate()
            _wait(app, lambda: window.controller.streaming, 10)
            _wait(app, lambda: not window.controller.streaming, 30)
        reply = window.chat_view.model.item(window.chat_view.model.rowCount() - 1)
        window.controller.select_version(reply.id, 1)
        _wait(
            app,
            lambda: (
                "Porto"
                in window.chat_view.model.item(window.chat_view.model.rowCount() - 1).content
            ),
        )
        _settle(app, 0.5)
        window.grab().save(str(out / "conversation-versions.png"))
        _close(window, core, lt)

        # 4 and 5: attachments.
        _fresh_home(ollama.url)
        window, core, lt = _open(app)
        window.picker.set_current(VISION)
        window.composer.add_files([str(photo), str(notes)])
        _send(app, window, "Where could this be? And is my list complete?")
        user = window.chat_view.model.item(0)
        sha = user.meta["attachments"][0]["sha256"]
        _wait(app, lambda: window.chat_view.has_thumbnail(sha))
        window.composer.add_files([str(photo)])
        window.composer.set_text("Make it warmer")
        _settle(app, 0.5)
        window.grab().save(str(out / "conversation-attachment.png"))
        window.composer.set_text("")
        window.composer.set_attachments([])
        window.picker.set_current(TEXT)
        window._show_chat_settings()
        window.composer.add_files([str(photo)])
        window.composer.set_text("And this one?")
        window.composer.send()
        _wait(app, lambda: window.chat_view.banner.isVisible(), 10)
        _wait(app, lambda: not window.controller.streaming, 10)
        _settle(app, 0.5)
        window.grab().save(str(out / "conversation-image-refused.png"))
        _close(window, core, lt)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))

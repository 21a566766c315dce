"""Render the app's screens into PNG files: ``python -m tests.helpers.screenshots OUTDIR``.

Runs the real app wiring (Core, loop thread, bridge, main window) against the protocol test
servers, under whatever display Qt gets (``make screenshots`` uses xvfb-run; it also works
with QT_QPA_PLATFORM=offscreen). Secrets go to an in-memory keyring, data to a temp home.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import keyring

from tests.helpers.memory_keyring import MemoryKeyring


def _wait(app: object, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        app.processEvents()  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise TimeoutError("screen did not reach the expected state")
        time.sleep(0.01)


def _settle(app: object, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def _grab_screen_area(widget: object, path: Path) -> None:
    """Grab what is on screen over the widget's window (includes popups above it)."""
    from PySide6.QtGui import QGuiApplication

    win = widget.window()  # type: ignore[attr-defined]
    screen = QGuiApplication.primaryScreen()
    geo = win.frameGeometry()
    pix = screen.grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height())
    if pix.isNull() or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        pix = win.grab()
    pix.save(str(path))


def main(outdir: str) -> int:
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    home = tempfile.mkdtemp(prefix="halext-shots-")
    os.environ["HALEXT_DESKTOP_HOME"] = home
    keyring.set_keyring(MemoryKeyring())

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from tests.servers.halext_server import HalextServer
    from tests.servers.ollama_server import OllamaServer

    QCoreApplication.setOrganizationName("halext-screenshots")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")

    from halext_desktop.app.core import Core
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.routing.refs import ModelRef
    from halext_desktop.storage.settings import Settings
    from halext_desktop.ui.theme import apply_theme

    with HalextServer() as halext, OllamaServer() as ollama:
        settings = Settings.load()
        settings.set("halext_url", halext.url)
        settings.set("ollama_hosts", [{"name": "local", "url": ollama.url}])
        settings.set("default_model", "ollama/qwen2.5:7b")
        core = Core(settings=settings)
        lt = LoopThread().start()
        lt.run(core.sign_in("dev", "dev123", False))

        # A conversation with some history, made through the real turns.
        conv = lt.run(core.conversations.create(title="Week planning"))
        prompts = [
            ("ollama/qwen2.5:7b", "Plan my week around three deadlines."),
            (
                "halext/openai:gpt-4o-mini",
                "Show a Python snippet:\n\n```python\ndef plan(days):\n"
                "    return [d for d in days if d.free]\n```",
            ),
            ("halext/ollama:nope", "Summarise the plan in one line."),
        ]

        async def fill() -> None:
            for ref, text in prompts:
                async for _ in core.turns.send(conv.id, text, ModelRef.parse(ref)):
                    pass

        lt.run(fill())
        for title in ("Release notes", "SQL question", "Trip to Lisbon"):
            c = lt.run(core.conversations.create(title=title))
            lt.run(core.conversations.add_message(c.id, "user", f"About {title.lower()}"))

        apply_theme(app, "light", 0)
        window = build_window(core, lt)
        window.resize(1400, 880)  # type: ignore[attr-defined]
        window.show()  # type: ignore[attr-defined]
        window.sidebar.refresh()  # type: ignore[attr-defined]
        window.sidebar.select(conv.id)  # type: ignore[attr-defined]
        window._open_conversation(conv.id)  # type: ignore[attr-defined]
        _wait(app, lambda: window._listing is not None)  # type: ignore[attr-defined]
        window.picker.set_current("ollama/qwen2.5:7b")  # type: ignore[attr-defined]
        _settle(app)

        # Mid-stream: a slow reply with its chip already showing.
        ollama.set_token_delay(0.15)
        window.composer.set_text("And what should I do first on Monday?")  # type: ignore[attr-defined]
        window._on_send(window.composer.text())  # type: ignore[attr-defined]
        window.composer.set_text("")  # type: ignore[attr-defined]
        _wait(app, lambda: len(ollama.requests_to("/api/chat")) > 0)
        _settle(app, 1.2)
        window.grab().save(str(out / "main-window.png"))  # type: ignore[attr-defined]
        window.controller.stop()  # type: ignore[attr-defined]
        _wait(app, lambda: not window.controller.streaming)  # type: ignore[attr-defined]
        ollama.set_token_delay(0)
        _settle(app)

        # The model picker, open and filtered, with the cloud switch on.
        settings.set("disable_cloud", True)
        _settle(app, 0.5)
        window.picker.open_popup()  # type: ignore[attr-defined]
        _settle(app, 0.5)
        popup = window.picker.popup  # type: ignore[attr-defined]
        _grab_screen_area(window, out / "model-picker.png")
        popup.grab().save(str(out / "model-picker-popup.png"))
        popup.close()
        settings.set("disable_cloud", False)
        _settle(app)

        # Settings dialog: AI and Connections tabs.
        window.open_settings("ai")  # type: ignore[attr-defined]
        dlg = window._settings_dialog  # type: ignore[attr-defined]
        dlg.resize(760, 620)
        _settle(app, 0.4)
        dlg.grab().save(str(out / "settings-ai.png"))
        dlg.show_tab("connections")
        _settle(app, 0.4)
        dlg.grab().save(str(out / "settings-connections.png"))
        dlg.close()

        # Providers: every route checked, the local models listed.
        checked: set[str] = set()
        panel = window.open_providers()  # type: ignore[attr-defined]
        panel.sig_checked.connect(checked.add)
        _wait(app, lambda: {"halext", "ollama"} <= checked)
        shown: list[str] = []
        panel.sig_models_shown.connect(shown.append)
        panel.show_models("ollama")
        _wait(app, lambda: "ollama" in shown)
        _settle(app, 0.4)
        panel.grab().save(str(out / "providers.png"))
        panel.close()

        # An assistant with its suggestions, from a local model.
        dialog = window.open_assistants("task")  # type: ignore[attr-defined]
        page = dialog.page("task")
        page.set_model("ollama/qwen2.5:7b")
        page.title_edit.setText("Ship the 1.0 release")
        page.description_edit.setPlainText("Tag, build installers, publish, announce.")
        # The protocol server fills a schema mechanically; for the picture, queue the kind of
        # reply a real model gives (it still goes through the real router and parser).
        ollama.queue_reply(
            '{"subtasks": ["Freeze main and tag v1.0.0", "Build Linux, macOS and Windows '
            'installers", "Publish to PyPI and the download page", "Post the release notes"], '
            '"labels": ["release", "packaging", "docs"], "priority": "high", '
            '"priority_reasoning": "Users are waiting for the stable build", '
            '"estimated_hours": 6.5}'
        )
        finished: list[object] = []
        page.sig_finished.connect(finished.append)
        page.run()
        _wait(app, lambda: bool(finished))
        _settle(app, 0.4)
        dialog.grab().save(str(out / "assistant.png"))
        dialog.close()

        # Usage: a few failures too, so every chart has something to say.
        ollama.fail_next(500, "model runner crashed", times=2)
        for _ in range(2):
            lt.run(
                _consume(core.turns.send(conv.id, "retry me", ModelRef.parse("ollama/qwen3:4b")))
            )
        loaded: list[bool] = []
        dash = window.open_usage()  # type: ignore[attr-defined]
        dash.sig_loaded.connect(lambda: loaded.append(True))
        dash.refresh()
        _wait(app, lambda: bool(loaded))
        _settle(app, 0.6)
        dash.grab().save(str(out / "usage-dashboard.png"))
        dash.close()

        window.close()  # type: ignore[attr-defined]
        lt.run(core.aclose())
        lt.stop()
        core.close()
    print(f"screenshots written to {out}")
    return 0


async def _consume(stream: object) -> None:
    async for _ in stream:  # type: ignore[attr-defined]
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))

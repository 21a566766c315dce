"""Screens of issue 9 ("nothing lost"), made the way a user would meet them:
``python -m tests.helpers.screenshots_nothing_lost OUTDIR`` (under xvfb-run, like
``make screenshots``).

1. ``nothing-lost-interrupted-reply.png``: the real window (a child process) is killed with
   SIGKILL mid-reply; the window started again shows the reply interrupted, text kept,
   with Retry.
2. ``nothing-lost-database-locked.png``: another process takes the database's write lock
   while a reply streams; the reply comes in full and the status bar says changes wait.
3. ``nothing-lost-saved-after-lock.png``: the lock goes; the status bar says all was saved.
4. ``nothing-lost-damaged-dialog.png``: a corrupt page in the middle of the file; the
   background check finds it at start and the dialog offers the newest good copy; what
   the user typed is still in the message box.
5. ``nothing-lost-restored.png``: after "Restore the newest copy".
6. ``nothing-lost-bad-environment.png``: OLLAMA_HOST=127.0.0.1:99999; the window opens
   with a banner saying what is wrong.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import keyring

from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.screenshots import _grab_screen_area, _settle, _wait

ROOT = Path(__file__).resolve().parents[2]
REF = "ollama/qwen2.5:7b"
LONG = (
    "Plan my week around three deadlines: the release on Wednesday, the tax return on "
    "Friday and the talk on Saturday. Be thorough and explain every step."
)


def _fresh_home() -> str:
    home = tempfile.mkdtemp(prefix="halext-shots-")
    os.environ["HALEXT_DESKTOP_HOME"] = home
    return home


def _settings(ollama_url: str) -> Any:
    from halext_desktop.storage.settings import Settings

    settings = Settings.load()
    settings.set("halext_url", "")
    settings.set("ollama_hosts", [{"name": "local", "url": ollama_url}])
    settings.set("default_model", REF)
    return settings


def _open(app: Any, *, background_checks: bool = False, env: dict[str, str] | None = None) -> Any:
    from halext_desktop.app.core import Core
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.storage.settings import Settings

    settings = Settings.load(env=env)
    core = Core(settings=settings, env=env, background_checks=background_checks)
    lt = LoopThread().start()
    window: Any = build_window(core, lt)
    window.resize(1300, 820)
    window.show()
    warnings = [w for w in (settings.load_warning, settings.env_warning) if w]
    if warnings:
        window.chat_view.show_banner("warning", "\n".join(warnings))
    _wait(app, lambda: window._listing is not None)
    _settle(app, 0.5)
    return window, core, lt


def _close(window: Any, core: Any, lt: Any) -> None:
    window.close()
    lt.run(core.aclose())
    lt.stop()
    core.close()


def main(outdir: str) -> int:
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    keyring.set_keyring(MemoryKeyring())

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from halext_desktop.storage import threads
    from halext_desktop.ui.theme import apply_theme
    from tests.helpers.storage import LockHolder, on_owner
    from tests.servers.ollama_server import OllamaServer

    QCoreApplication.setOrganizationName("halext-screenshots")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")
    apply_theme(app, "light", 0)
    threads.forbid_current_thread("the GUI thread")  # as the app does: no SQLite here

    with OllamaServer() as ollama:
        # 1. kill -9 the window mid-reply, start it again.
        _fresh_home()
        _settings(ollama.url)
        ollama.set_token_delay(0.15)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.window_child", LONG],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert ollama.wait_for(
            lambda: any(r.lines_sent >= 20 for r in ollama.requests_to("/api/chat")), 60
        ), "the window never started its reply"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        ollama.set_token_delay(0)
        window, core, lt = _open(app)
        convs = lt.run(core.conversations.list())
        window._open_conversation(convs[0].id)
        window.sidebar.select(convs[0].id)
        _wait(app, lambda: window.chat_view.banner.isVisible())
        _settle(app, 0.6)
        window.grab().save(str(out / "nothing-lost-interrupted-reply.png"))
        _close(window, core, lt)

        # 2 and 3. Another program holds the write lock while a reply streams.
        _fresh_home()
        _settings(ollama.url)
        window, core, lt = _open(app)
        path = core.db.path
        ollama.set_token_delay(0.05)
        window.composer.set_text("What should I do first on Monday?")
        window._on_send(window.composer.text())
        window.composer.set_text("")
        _wait(app, lambda: window.chat_view.is_streaming())
        holder = LockHolder(path)  # another process takes the write lock mid-reply
        _wait(app, lambda: not window.controller.streaming, 30)
        _wait(app, lambda: "locked by another program" in window.database_state.text(), 10)
        _settle(app, 0.5)
        window.grab().save(str(out / "nothing-lost-database-locked.png"))
        holder.release()
        _wait(app, lambda: "Everything waiting was saved" in window.database_state.text(), 20)
        _settle(app, 0.4)
        window.grab().save(str(out / "nothing-lost-saved-after-lock.png"))
        ollama.set_token_delay(0)
        _close(window, core, lt)

        # 4 and 5. A corrupt page in the middle of the file.
        home = _fresh_home()
        _settings(ollama.url)
        window, core, lt = _open(app)
        for title, text in (("Week planning", LONG), ("SQL question", "How do I join two tables?")):

            async def turn(title: str = title, text: str = text) -> None:
                async for _ in core.turns.send(None, text, core.resolve_model(REF), title=title):
                    pass

            lt.run(turn())
        assert on_owner(core).flush()
        core.storage.owner.call(core.db.backup, "daily", verify=True)
        _close(window, core, lt)
        from tests.storage.test_owner import corrupt_fts

        def damage() -> None:
            corrupt_fts(Path(home) / "data" / "halext.db")

        from tests.helpers.storage import on_plain_thread

        on_plain_thread(damage)
        window, core, lt = _open(app, background_checks=True)
        window.composer.set_text("Draft I have not sent yet: remind me about the dentist")
        _wait(app, lambda: window.repair.dialog is not None, 20)
        _settle(app, 0.6)
        dialog = window.repair.dialog
        dialog.move(window.geometry().center() - dialog.rect().center())
        _settle(app, 0.4)
        _grab_screen_area(window, out / "nothing-lost-damaged-dialog.png")
        dialog.grab().save(str(out / "nothing-lost-damaged-dialog-only.png"))
        repaired: list[str] = []
        window.repair.sig_repaired.connect(repaired.append)
        window.repair.restore_button.click()
        _wait(app, lambda: bool(repaired), 20)
        _wait(app, lambda: len(window.sidebar.visible_titles()) == 2, 10)
        _settle(app, 0.6)
        window.grab().save(str(out / "nothing-lost-restored.png"))
        _close(window, core, lt)

        # 6. A malformed OLLAMA_HOST: the window opens with a banner.
        _fresh_home()
        _settings(ollama.url)
        env = {**os.environ, "OLLAMA_HOST": "127.0.0.1:99999"}
        window, core, lt = _open(app, env=env)
        _settle(app, 0.5)
        window.grab().save(str(out / "nothing-lost-bad-environment.png"))
        _close(window, core, lt)
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))

"""The real window in a child process, sending one message as soon as it can: for tests that
signal or kill the window mid-reply (``python -m tests.helpers.window_child PROMPT``).

Everything is the app's own start-up (``app.gui.main``: the settings and database of
``HALEXT_DESKTOP_HOME``, the loop thread, the owner thread, the signal handling); the only
addition is a timer that types PROMPT and presses Send once a model is selected. It prints
``sent`` when it did, and every banner the window shows (``banner: ...``), so the parent
can follow along.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> int:
    from PySide6.QtCore import QTimer

    from halext_desktop.app import gui
    from halext_desktop.storage.logfile import setup_logging

    prompt = sys.argv[1]
    original = gui.build_window

    def build(core: Any, loop_thread: Any) -> Any:
        window: Any = original(core, loop_thread)

        def try_send() -> None:
            if window._listing is not None and window.picker.current():
                window.composer.set_text(prompt)
                window._on_send(prompt)
                print("sent", flush=True)
            else:
                QTimer.singleShot(50, try_send)

        show_banner = window.chat_view.show_banner

        def reported(kind: str, text: str, *args: Any, **kwargs: Any) -> None:
            print(f"banner: {text}", flush=True)  # at once: a send clears banners
            show_banner(kind, text, *args, **kwargs)

        window.chat_view.show_banner = reported

        QTimer.singleShot(50, try_send)
        return window

    gui.build_window = build  # type: ignore[assignment]
    setup_logging()
    return gui.main([sys.argv[0]], files=[])


if __name__ == "__main__":
    sys.exit(main())

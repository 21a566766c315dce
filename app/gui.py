"""Start the desktop window: QApplication, the loop thread, the core, the main window."""

from __future__ import annotations

import logging
import sys
from concurrent.futures import wait

from halext_desktop.app.core import Core
from halext_desktop.app.loop_thread import LoopThread

log = logging.getLogger(__name__)


def build_window(core: Core, loop_thread: LoopThread) -> object:
    """Create the bridge, notifier and main window for an existing QApplication."""
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.main_window import MainWindow, app_icon
    from halext_desktop.ui.qt_settings import SettingsNotifier

    bridge = Bridge(loop_thread)
    notifier = SettingsNotifier(core.settings)
    window = MainWindow(core, bridge, notifier)
    window.setWindowIcon(app_icon())
    # Keep Python owners alive as long as the window.
    window._keepalive = (bridge, notifier)  # type: ignore[attr-defined]
    return window


def main(argv: list[str] | None = None, *, files: list[str] | None = None) -> int:
    """Run the window until it closes. Logging is set up by the caller (``app.cli.main``);
    ``files`` are what a desktop environment passed (``%U``), offered as a draft."""
    from PySide6.QtWidgets import QApplication

    from halext_desktop.ui.main_window import app_icon
    from halext_desktop.ui.theme import apply_theme

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")
    app.setApplicationDisplayName("Halext Desktop")
    app.setOrganizationName("halext")
    app.setDesktopFileName("halext-desktop")
    app.setWindowIcon(app_icon())

    try:
        core = Core()
    except Exception as exc:  # a broken database: say which file and where backups are
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "Halext Desktop", f"Could not open your data:\n\n{exc}")
        return 1
    apply_theme(app, core.settings.theme, core.settings.font_size)
    loop_thread = LoopThread().start()
    window = build_window(core, loop_thread)
    window.show()  # type: ignore[attr-defined]
    if core.settings.load_warning:
        window.chat_view.show_banner("warning", core.settings.load_warning)  # type: ignore[attr-defined]
    if files:
        window.open_files(files)  # type: ignore[attr-defined]
    if not core.secrets.persistent and core.secrets.note:
        window.statusBar().showMessage(core.secrets.note, 15000)  # type: ignore[attr-defined]
    try:
        return app.exec()
    finally:
        # Let what the Models window still had in flight end before the routes close.
        wait(getattr(window, "pending_on_close", []), timeout=5)
        try:
            loop_thread.run(core.aclose(), timeout=5)
        except Exception:  # shutting down: nothing left to tell the user
            log.debug("closing backends failed", exc_info=True)
        loop_thread.stop()
        core.close()

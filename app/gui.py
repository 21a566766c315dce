"""Start the desktop window: QApplication, the loop thread, the core, the main window."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from concurrent.futures import wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Both imported behind the start outline (asyncio comes with the loop thread).
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


def _quit_on_signals(app: object) -> Callable[[], None]:
    """SIGTERM and SIGHUP (a session ending, ``kill``) close the window the orderly way, so
    a reply in flight is saved as ``interrupted`` first. Python runs signal handlers only
    between bytecodes, which Qt's C++ event loop never gives it, so the signal is written
    to a socket that a QSocketNotifier watches (``signal.set_wakeup_fd``). Returns the
    function that puts everything back."""
    import signal
    import socket

    from PySide6.QtCore import QSocketNotifier

    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s]
    try:
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        old_fd = signal.set_wakeup_fd(writer.fileno())
    except (OSError, ValueError):  # not the main thread, or no socketpair here
        return lambda: None
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, handler) for signum in wanted}
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

    def wake() -> None:
        with contextlib.suppress(OSError):
            reader.recv(64)
        if received:
            log.warning("signal %d received: closing the window", received[-1])
            app.quit()  # type: ignore[attr-defined]

    notifier.activated.connect(wake)

    def restore() -> None:
        notifier.setEnabled(False)
        for signum, old in previous.items():
            signal.signal(signum, old)
        signal.set_wakeup_fd(old_fd)
        reader.close()
        writer.close()

    return restore


# How long the core's build waits for the start outline's first paint (ms).
STARTER_MS = 50


def _build_core_behind(
    shell: object, settings: object, after_paint: Callable[[], None] | None = None
) -> Core:
    """Build the core on another thread while the event loop keeps the start shell painted
    (and movable); ``after_paint`` runs on this thread first, once the outline has painted.
    Raises what ``Core()`` raised."""
    import threading

    from PySide6.QtCore import QEventLoop, QTimer

    result: list[Core] = []
    failure: list[BaseException] = []

    def build() -> None:
        try:
            from halext_desktop.app.core import Core

            core = Core(settings=settings, background_checks=True)  # type: ignore[arg-type]
            # The routes too (they import the HTTP clients): here, not on the GUI thread.
            result.append(core.build_routes())
        except BaseException as exc:  # handed to the GUI thread, which reports it
            failure.append(exc)

    worker = threading.Thread(target=build, name="core-start", daemon=True)
    started: list[bool] = []

    def begin() -> None:
        if not started:
            started.append(True)
            if after_paint is not None:
                after_paint()
            worker.start()

    # The build (imports that hold the GIL) starts once the outline has painted, or after
    # a moment if the platform shows nothing yet (a minimised start, say).
    if getattr(shell, "painted", False):
        begin()
    else:
        painted = getattr(shell, "sig_painted", None)
        if painted is not None:
            painted.connect(begin)
    fallback = QTimer()
    fallback.setSingleShot(True)
    fallback.timeout.connect(begin)
    fallback.start(STARTER_MS)
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(5)
    poll.timeout.connect(lambda: None if not started or worker.is_alive() else loop.quit())
    poll.start()
    loop.exec()
    poll.stop()
    fallback.stop()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]


def main(
    argv: list[str] | None = None,
    *,
    files: list[str] | None = None,
    log_setup: Callable[[], None] | None = None,
) -> int:
    """Run the window until it closes. ``files`` are what a desktop environment passed
    (``%U``), offered as a draft. Logging is set up by the caller (``app.cli.main``), either
    before (``log_setup`` None) or through ``log_setup``, which runs once the outline has
    painted: until then only warnings reach stderr (Python's last-resort handler).

    The window's outline (``StartShell``) is painted first; the core (database, routes,
    keyring) is built behind it on another thread, then the real window takes its place."""
    from PySide6.QtWidgets import QApplication

    from halext_desktop.storage.paths import config_dir
    from halext_desktop.storage.settings import Settings
    from halext_desktop.ui.start_shell import StartShell
    from halext_desktop.ui.theme import apply_theme

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")
    app.setApplicationDisplayName("Halext Desktop")
    app.setOrganizationName("halext")
    app.setDesktopFileName("halext-desktop")
    from halext_desktop.app.gc_timer import GuiThreadCollector

    collector = GuiThreadCollector(parent=app)  # cycles are collected here, between events

    try:
        settings = Settings.load()
    except Exception as exc:  # a settings file from a newer version, an unwritable folder
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "Halext Desktop", f"Could not start:\n\n{exc}")
        return 1
    apply_theme(app, settings.theme, settings.font_size)
    shell = StartShell("Halext Desktop", config_dir() / "window.ini")
    shell.show()

    def after_paint() -> None:
        # After the first frame: the log file, and the icon (an SVG: on a desktop, showing a
        # window with it loads Qt's SVG plugin and renders it at several sizes).
        if log_setup is not None:
            log_setup()
        from PySide6.QtGui import QIcon

        from halext_desktop.resources.paths import icon_path

        app.setWindowIcon(QIcon(str(icon_path("halext-desktop"))))

    try:
        # Opens the database on its owner thread: the window shows meanwhile, and a damaged
        # or locked file is reported inside it.
        core = _build_core_behind(shell, settings, after_paint)
    except Exception as exc:  # a session folder we cannot write, a broken keyring
        shell.close()
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "Halext Desktop", f"Could not start:\n\n{exc}")
        return 1
    if shell.closed_by_user:
        core.close(timeout=3)
        return 0
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.storage import threads

    # From here on SQLite never runs on this thread: the database has its own.
    threads.forbid_current_thread("the GUI thread")
    loop_thread = LoopThread().start()
    window = build_window(core, loop_thread)
    shell.hand_over(window)  # type: ignore[arg-type]
    warnings = [w for w in (core.settings.load_warning, core.settings.env_warning) if w]
    if warnings:
        window.chat_view.show_banner("warning", "\n".join(warnings))  # type: ignore[attr-defined]
    if files:
        window.open_files(files)  # type: ignore[attr-defined]
    if not core.secrets.persistent and core.secrets.note:
        window.statusBar().showMessage(core.secrets.note, 15000)  # type: ignore[attr-defined]
    restore_signals = _quit_on_signals(app)
    try:
        return app.exec()
    finally:
        # Let what the Models window still had in flight end before the routes close.
        wait(getattr(window, "pending_on_close", []), timeout=5)
        shutdown(core, loop_thread)
        restore_signals()
        threads.allow_current_thread()
        collector.stop()


def shutdown(core: Core, loop_thread: LoopThread) -> None:
    """Stop replies in flight (saved as interrupted, their text kept), close the HTTP
    clients and the loop, then write what waits for the database or keep it in the spool
    file for the next start."""
    from halext_desktop.storage.store import close_message

    try:
        n = loop_thread.run(core.interrupt_replies(timeout=5), timeout=8)
        if n:
            log.warning("%d reply(ies) in flight were saved as interrupted", n)
    except Exception:  # shutting down: keep going, the database still gets closed
        log.warning("stopping the replies in flight failed", exc_info=True)
    try:
        loop_thread.run(core.aclose(), timeout=5)
    except Exception:  # shutting down: nothing left to tell the user
        log.debug("closing backends failed", exc_info=True)
    loop_thread.stop()
    report = core.close(timeout=3)
    message = close_message(report, core.db.path)
    if message:
        log.warning("%s", message)
        print(f"halext-desktop: {message}", file=sys.stderr)

"""What the window looks like while it starts: shown before the core is built.

The app's first paint must not wait for SQLAlchemy, the HTTP clients, the database or the
keyring (ux.md: the window appears at once). ``StartShell`` is a plain ``QMainWindow`` laid
out like the main window (header, sidebar, an empty chat, the status bar), at the main
window's saved geometry, painted while ``app.gui`` builds the core on another thread; the
real window then takes its place at the same spot. It imports nothing but Qt, and not
even PySide's ``Qt`` namespace: its first use builds ~100 enum classes (~30 ms), so the
outline centres with stretches and relies on the splitter's default (horizontal).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

STARTING = "Starting…"


class StartShell(QMainWindow):
    """The main window's outline while the app starts.

    Signals:
        sig_closed(): the user closed it before the window was ready (the app then quits).
    """

    sig_closed = Signal()
    sig_painted = Signal()  # its first paint (the core's build starts behind it then)

    def __init__(self, title: str, window_ini: Path | None = None) -> None:
        super().__init__()
        self.setObjectName("StartShell")
        self.setWindowTitle(title)
        self.resize(1200, 780)
        if window_ini is not None and window_ini.exists():
            geo = QSettings(str(window_ini), QSettings.Format.IniFormat).value("main/geometry")
            if geo is not None:
                self.restoreGeometry(geo)
        header = QWidget()
        header.setObjectName("Header")
        hl = QHBoxLayout(header)
        hl.setContentsMargins(12, 6, 12, 6)
        name = QLabel("Halext Desktop")
        font = name.font()
        font.setBold(True)
        name.setFont(font)
        hl.addWidget(name)
        hl.addStretch(1)

        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(6, 6, 6, 6)
        sl.setSpacing(6)
        new = QPushButton("+ New chat")
        new.setEnabled(False)
        search = QLineEdit()
        search.setPlaceholderText("Search… (Ctrl+F)")
        search.setEnabled(False)
        sl.addWidget(new)
        sl.addWidget(search)
        sl.addStretch(1)
        self.message = QLabel(STARTING)
        self.message.setAccessibleName("Starting")
        chat = QWidget()
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.message)
        row.addStretch(1)
        cl = QVBoxLayout(chat)
        cl.addStretch(1)
        cl.addLayout(row)
        cl.addStretch(1)
        splitter = QSplitter()  # horizontal
        splitter.addWidget(side)
        splitter.addWidget(chat)
        splitter.setSizes([260, 940])
        central = QWidget()
        vl = QVBoxLayout(central)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.setSpacing(0)
        vl.addWidget(header)
        vl.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage(STARTING)
        self.closed_by_user = False
        self._handing_over = False
        self.painted = False
        central.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if event.type() == QEvent.Type.Paint and not self.painted:
            self.painted = True
            QTimer.singleShot(0, self, self.sig_painted.emit)  # once this paint is done
        return False

    def hand_over(self, window: QWidget) -> None:
        """The real window is ready: show it where this one is, and go."""
        self._handing_over = True
        if not (self.isMinimized() or self.isMaximized() or self.isFullScreen()):
            window.setGeometry(self.geometry())
        window.show()
        self.close()
        self.deleteLater()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if not self._handing_over:
            self.closed_by_user = True
            self.sig_closed.emit()
        super().closeEvent(event)

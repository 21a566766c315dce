"""The main window's menu bar: File (New chat, Settings, Quit), Window (the side windows,
Refresh models) and Help (Keyboard shortcuts, About).

The window's own shortcuts (Ctrl+N, Ctrl+K…) stay QShortcuts of the window, working
everywhere in it; a menu entry shows its key after a tab (``New chat\\tCtrl+N``) without
registering it a second time (two owners of one key would make both ambiguous). Quit
(Ctrl+Q) and Keyboard shortcuts (F1) are the menu's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from halext_desktop import __version__

APP_NAME = "Halext Desktop"

# Every key the app answers to, grouped as the user meets them. One list: the Help dialog
# shows it, the menu entries take their key text from it.
SHORTCUTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Chat",
        (
            ("Ctrl+N", "New chat"),
            ("Ctrl+K", "Choose the model"),
            ("Enter", "Send (Shift+Enter: new line)"),
            ("Esc", "Stop the reply on screen"),
            ("Ctrl+C", "Copy the selected text of a message (the whole message when none)"),
            ("Ctrl+A", "Select all of the message in focus"),
            ("Shift+F10", "The menu of the message in focus"),
        ),
    ),
    (
        "Chat list",
        (
            ("Ctrl+F", "Search the chats"),
            ("F2", "Rename the chat"),
            ("Delete", "Delete the chat (Undo brings it back)"),
        ),
    ),
    (
        "Windows",
        (
            ("Ctrl+Shift+M", "Models"),
            ("Ctrl+Shift+P", "Providers"),
            ("Ctrl+Shift+A", "Assistants"),
            ("Ctrl+Shift+U", "Usage"),
            ("Ctrl+,", "Settings"),
            ("F5", "Reload the model lists"),
            ("Esc", "Close Providers or Usage"),
        ),
    ),
    (
        "App",
        (
            ("F1", "This list"),
            ("Ctrl+Q", "Quit"),
        ),
    ),
)


def shortcut_text(keys: str) -> str:
    """``Ctrl+Shift+M`` as this platform writes it (``⇧⌘M`` on macOS)."""
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText) or keys


class ShortcutsDialog(QDialog):
    """Help → Keyboard shortcuts: every key, in one table; Esc or Close closes it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Keyboard shortcuts — {APP_NAME}")
        rows = [(group, keys, what) for group, entries in SHORTCUTS for keys, what in entries]
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Where", "Keys", "Does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        shown_group = ""
        for row, (group, keys, what) in enumerate(rows):
            cells = (group if group != shown_group else "", shortcut_text(keys), what)
            shown_group = group
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(620, 560)

    def rows(self) -> list[list[str]]:
        """The table as shown: [where, keys, does] per row."""
        out = []
        for r in range(self.table.rowCount()):
            cells = [self.table.item(r, c) for c in range(3)]
            out.append([c.text() if c is not None else "" for c in cells])
        return out


def about_text() -> str:
    return (
        f"<p><b>{APP_NAME}</b> {__version__}</p>"
        "<p>A desktop chat for local models (Ollama) and the halext server: every reply "
        "says which model answered and where the text went; cloud models only when you "
        "allow them; a usage dashboard of every request.</p>"
        "<p>Your chats are kept on this computer.</p>"
    )


@dataclass
class MenuActions:
    """The menu's entries, for the window and its tests."""

    new_chat: QAction
    settings: QAction
    quit: QAction
    models: QAction
    providers: QAction
    assistants: QAction
    usage: QAction
    refresh: QAction
    shortcuts: QAction
    about: QAction
    # Help → Keyboard shortcuts, made the first time it is asked for.
    shortcuts_dialog: ShortcutsDialog | None = None


def build_menu_bar(
    window: QMainWindow,
    *,
    new_chat: Callable[[], object],
    settings: Callable[[], object],
    models: Callable[[], object],
    providers: Callable[[], object],
    assistants: Callable[[], object],
    usage: Callable[[], object],
    refresh: Callable[[], object],
) -> MenuActions:
    """Fill ``window``'s menu bar; Quit closes the window (the app ends with it)."""
    bar = window.menuBar()

    def entry(menu_name: str, text: str, slot: Callable[[], object], keys: str = "") -> QAction:
        # The key after a tab is shown, not registered: the window's QShortcut owns it.
        label = f"{text}\t{shortcut_text(keys)}" if keys else text
        action = QAction(label, window)
        action.triggered.connect(lambda _checked=False: slot())
        menus[menu_name].addAction(action)
        return action

    menus = {name: bar.addMenu(name) for name in ("&File", "&Window", "&Help")}
    new_action = entry("&File", "&New chat", new_chat, "Ctrl+N")
    settings_action = entry("&File", "&Settings…", settings, "Ctrl+,")
    settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
    menus["&File"].addSeparator()
    quit_action = QAction("&Quit", window)
    quit_action.setShortcut(QKeySequence("Ctrl+Q"))
    quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    quit_action.triggered.connect(lambda _checked=False: window.close())
    menus["&File"].addAction(quit_action)
    window.addAction(quit_action)  # works with the menu bar hidden, as on some desktops

    actions = MenuActions(
        new_chat=new_action,
        settings=settings_action,
        quit=quit_action,
        models=entry("&Window", "&Models", models, "Ctrl+Shift+M"),
        providers=entry("&Window", "&Providers", providers, "Ctrl+Shift+P"),
        assistants=entry("&Window", "&Assistants", assistants, "Ctrl+Shift+A"),
        usage=entry("&Window", "&Usage", usage, "Ctrl+Shift+U"),
        refresh=entry("&Window", "&Reload model lists", refresh, "F5"),
        shortcuts=QAction("&Keyboard shortcuts", window),
        about=QAction(f"&About {APP_NAME}", window),
    )
    actions.shortcuts.setShortcut(QKeySequence("F1"))
    actions.shortcuts.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    window.addAction(actions.shortcuts)

    def show_shortcuts() -> None:
        if actions.shortcuts_dialog is None:
            actions.shortcuts_dialog = ShortcutsDialog(window)
        actions.shortcuts_dialog.show()
        actions.shortcuts_dialog.raise_()
        actions.shortcuts_dialog.activateWindow()

    actions.shortcuts.triggered.connect(lambda _checked=False: show_shortcuts())
    actions.about.setMenuRole(QAction.MenuRole.AboutRole)
    actions.about.triggered.connect(
        lambda _checked=False: QMessageBox.about(window, f"About {APP_NAME}", about_text())
    )
    menus["&Help"].addAction(actions.shortcuts)
    menus["&Help"].addSeparator()
    menus["&Help"].addAction(actions.about)
    return actions

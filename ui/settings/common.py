"""What the settings tabs share: the one-line texts for errors and test results, the
inline error label under a field, and the page base that writes a value through.

Every change is written through ``settings.set`` the moment a box is ticked or a field is
left (no OK/Apply), so it takes effect at once; a rejected value shows the SettingsError's
message next to its field and the field goes back to the stored value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QWidget

from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.types import Health
from halext_desktop.storage.logfile import see_the_log
from halext_desktop.storage.settings import SettingsError
from halext_desktop.ui.text import plain

if TYPE_CHECKING:
    from halext_desktop.storage.settings import Settings
    from halext_desktop.ui.settings.dialog import SettingsDialog

# ``confirm(title, text) -> bool``: asks the user a yes/no question (replaced in tests).
Confirm = Callable[[str, str], bool]


def error_text(exc: BaseException) -> str:
    """One line for the user. Unknown exceptions are named, not echoed: their text may
    carry a URL with credentials or a library's internals."""
    if isinstance(exc, RouteError):
        return plain(exc.one_line())
    if isinstance(exc, SettingsError | OSError):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}); {see_the_log()}"


def health_text(health: Health) -> str:
    """``✓ Ollama 0.12.3 · 7 models · 4 ms`` or ``✗ <the exact failure>``."""
    if health.ok:
        if health.detail:
            return f"✓ {plain(health.detail)}"
        latency = f" · {health.latency_ms} ms" if health.latency_ms is not None else ""
        return f"✓ reachable{latency}"
    return f"✗ {plain(health.detail) or 'not reachable'}"


def muted(label: QLabel) -> QLabel:
    """``label`` as a wrapped secondary note (the palette's placeholder colour)."""
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    label.setWordWrap(True)
    return label


class FieldError(QLabel):
    """The inline message under a field; hidden while there is nothing to say."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAccessibleName(f"{name} error")
        self.hide()

    def show_error(self, message: str | None) -> None:
        self.setText(f"⚠ {plain(message)}" if message else "")
        self.setVisible(bool(message))

    def message(self) -> str:
        return self.text().removeprefix("⚠ ")


class Page(QWidget):
    """Shared plumbing of the tabs: write-through with inline errors."""

    def __init__(self, dialog: SettingsDialog) -> None:
        super().__init__(dialog)
        self.switch_error = FieldError("Switches", self)
        self.dialog = dialog
        self.settings: Settings = dialog.services.settings

    def write(self, key: str, value: Any, error: FieldError, *, revert: bool = True) -> bool:
        """``settings.set`` with the refusal shown under the field.

        ``revert=False`` keeps what the user typed in a text field so it can be corrected;
        switches, tables and spin boxes go back to the stored value.
        """
        try:
            self.settings.set(key, value)
        except (SettingsError, OSError) as exc:
            error.show_error(error_text(exc))
            if revert:
                self.reload(key)
            return False
        error.show_error(None)
        return True

    def reload(self, key: str | None = None) -> None:
        """Show the stored value of ``key`` (None: every key this page shows)."""

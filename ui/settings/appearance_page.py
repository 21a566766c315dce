"""Settings → Appearance: theme and font size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QSpinBox,
    QVBoxLayout,
)

from halext_desktop.ui.settings.common import FieldError, Page

if TYPE_CHECKING:
    from halext_desktop.ui.settings.dialog import SettingsDialog

THEMES = (("system", "Follow system"), ("light", "Light"), ("dark", "Dark"))
FONT_SYSTEM_SENTINEL = 7  # the spin box's minimum, shown as "System", stored as 0


class AppearancePage(Page):
    """Theme and font size."""

    def __init__(self, dialog: SettingsDialog) -> None:
        super().__init__(dialog)
        self.theme_error = FieldError("Theme", self)
        self.theme = QComboBox(self)
        self.theme.setAccessibleName("Theme")
        self.theme.setToolTip("Follow the system's light/dark choice, or force one")
        for value, label in THEMES:
            self.theme.addItem(label, value)
        self.theme.currentIndexChanged.connect(
            lambda _i: self.write("theme", self.theme.currentData(), self.theme_error)
        )
        self.font_size = QSpinBox(self)
        self.font_size.setAccessibleName("Font size")
        self.font_size.setToolTip("Points for the chat text; the lowest value follows the system")
        self.font_size.setRange(FONT_SYSTEM_SENTINEL, 32)
        self.font_size.setSpecialValueText("System")
        self.font_size.setSuffix(" pt")
        self.font_size.setMinimumWidth(110)
        self.font_size.valueChanged.connect(self._commit_font)
        self.font_error = FieldError("Font size", self)

        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        theme_col = QVBoxLayout()
        theme_col.addWidget(self.theme)
        theme_col.addWidget(self.theme_error)
        form.addRow("Theme:", theme_col)
        font_col = QVBoxLayout()
        font_col.addWidget(self.font_size)
        font_col.addWidget(self.font_error)
        form.addRow("Font size:", font_col)
        self.reload()

    def _commit_font(self, value: int) -> None:
        self.write("font_size", 0 if value == FONT_SYSTEM_SENTINEL else value, self.font_error)

    def reload(self, key: str | None = None) -> None:
        s = self.settings
        if key in (None, "theme"):
            i = self.theme.findData(s.theme)
            self.theme.blockSignals(True)
            self.theme.setCurrentIndex(max(i, 0))
            self.theme.blockSignals(False)
        if key in (None, "font_size"):
            self.font_size.blockSignals(True)
            self.font_size.setValue(s.font_size or FONT_SYSTEM_SENTINEL)
            self.font_size.blockSignals(False)

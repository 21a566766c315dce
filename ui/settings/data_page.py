"""Settings → Data: where the files live (read-only, with Open folder) and how long usage
is kept.

The log file is listed because every "something unexpected happened" message names it:
the user should be able to find it without reading a path out of a banner.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from halext_desktop.ui.settings.common import FieldError, Page, muted

if TYPE_CHECKING:
    from halext_desktop.ui.settings.dialog import SettingsDialog


class DataPage(Page):
    """Where the files live (read-only, with Open folder) and usage retention."""

    def __init__(
        self,
        dialog: SettingsDialog,
        db_file: Path,
        settings_file: Path | None,
        log_file: Path,
    ) -> None:
        super().__init__(dialog)
        self.retention_error = FieldError("Usage retention", self)
        self.db_path = self._path_field("Database location", db_file)
        self.settings_path = self._path_field("Settings file location", settings_file)
        self.log_path = self._path_field("Log file location", log_file)
        self.open_db = self._open_button("Database", db_file)
        self.open_settings = self._open_button("Settings", settings_file)
        self.open_log = self._open_button("Log", log_file)
        self.retention = QSpinBox(self)
        self.retention.setAccessibleName("Usage retention days")
        self.retention.setToolTip(
            "Usage rows older than this are deleted; the lowest value keeps them forever"
        )
        self.retention.setRange(0, 3650)
        self.retention.setSpecialValueText("Keep forever")
        self.retention.setSuffix(" days")
        self.retention.valueChanged.connect(
            lambda v: self.write("usage_retention_days", v, self.retention_error)
        )

        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, field, button in (
            ("Database:", self.db_path, self.open_db),
            ("Settings:", self.settings_path, self.open_settings),
            ("Log file:", self.log_path, self.open_log),
        ):
            row = QHBoxLayout()
            row.addWidget(field, 1)
            row.addWidget(button)
            form.addRow(label, row)
        ret_row = QHBoxLayout()
        ret_row.addWidget(self.retention)
        ret_row.addStretch(1)
        ret_col = QVBoxLayout()
        ret_col.addLayout(ret_row)
        ret_col.addWidget(self.retention_error)
        form.addRow("Keep usage for:", ret_col)
        note = muted(
            QLabel(
                "Passwords, tokens and API keys are in the system keyring, never in these files.",
                self,
            )
        )
        form.addRow("", note)
        self.reload()

    def _path_field(self, name: str, path: Path | None) -> QLineEdit:
        field = QLineEdit(str(path) if path else "in memory (not saved)", self)
        field.setReadOnly(True)
        field.setAccessibleName(name)
        field.setToolTip(str(path) if path else "")
        return field

    def _open_button(self, what: str, path: Path | None) -> QPushButton:
        b = QPushButton("Open folder", self)
        b.setAccessibleName(f"Open {what.lower()} folder")
        b.setToolTip(f"Show the {what.lower()} folder in the file manager")
        b.setEnabled(path is not None)
        if path is not None:
            folder = path.parent
            b.clicked.connect(
                lambda _c=False: self.dialog.open_url(QUrl.fromLocalFile(str(folder)))
            )
        return b

    def reload(self, key: str | None = None) -> None:
        if key in (None, "usage_retention_days"):
            self.retention.blockSignals(True)
            self.retention.setValue(self.settings.usage_retention_days)
            self.retention.blockSignals(False)

"""The usage window's table: one row per recorded request, with sort keys that sort numbers
as numbers and the status coloured from the palette."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QPalette

from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.ui.theme import error_color, muted_text, warning_color

COLUMNS: tuple[str, ...] = (
    "Time",
    "Model",
    "Route",
    "Endpoint",
    "Status",
    "Latency (ms)",
    "TTFT (ms)",
    "Tokens",
    "Error",
)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RECORD_ROLE = Qt.ItemDataRole.UserRole + 2


def local_time_text(when: datetime) -> str:
    """``2026-11-25 21:04:13`` in the local time zone (rows are stored in UTC)."""
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def tokens_text(row: UsageRecord) -> str:
    """Total tokens, with ``~`` when they are estimates (halext counts len(text) // 4)."""
    return f"{row.total_tokens}" if row.tokens_exact else f"~{row.total_tokens}"


def _ms(value: int | None) -> str:
    return "" if value is None else str(value)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


class UsageTableModel(QAbstractTableModel):
    """The recent requests, one row per usage record (newest first as loaded)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[UsageRecord] = []
        self._palette = QPalette()

    def set_rows(self, rows: Sequence[UsageRecord]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def set_palette(self, palette: QPalette) -> None:
        self._palette = palette
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(COLUMNS) - 1)
            )

    def rows(self) -> list[UsageRecord]:
        return list(self._rows)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(  # noqa: N802 - Qt override
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(COLUMNS):
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole and COLUMNS[section] == "Tokens":
                return "Prompt + response tokens; ~ marks estimates (halext counts characters ÷ 4)"
            if role == Qt.ItemDataRole.ToolTipRole and COLUMNS[section] == "TTFT (ms)":
                return "Time to first token"
        return None

    @staticmethod
    def cell_text(row: UsageRecord, column: int) -> str:
        """The text shown in (and exported from) a cell."""
        name = COLUMNS[column]
        if name == "Time":
            return local_time_text(row.created_at)
        if name == "Model":
            return row.model_identifier
        if name == "Route":
            return row.route
        if name == "Endpoint":
            return row.endpoint
        if name == "Status":
            return UsageStatus(row.status).value
        if name == "Latency (ms)":
            return _ms(row.latency_ms)
        if name == "TTFT (ms)":
            return _ms(row.ttft_ms)
        if name == "Tokens":
            return tokens_text(row)
        return _one_line(row.error)

    @staticmethod
    def _sort_key(row: UsageRecord, column: int) -> Any:
        name = COLUMNS[column]
        if name == "Time":
            return row.created_at.timestamp()
        if name == "Latency (ms)":
            return -1 if row.latency_ms is None else row.latency_ms
        if name == "TTFT (ms)":
            return -1 if row.ttft_ms is None else row.ttft_ms
        if name == "Tokens":
            return row.total_tokens
        return UsageTableModel.cell_text(row, column).lower()

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        name = COLUMNS[col]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell_text(row, col)
        if role == SORT_ROLE:
            return self._sort_key(row, col)
        if role == RECORD_ROLE:
            return row
        if role == Qt.ItemDataRole.TextAlignmentRole and name in (
            "Latency (ms)",
            "TTFT (ms)",
            "Tokens",
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and name == "Status":
            status = UsageStatus(row.status)
            if status in (UsageStatus.ERROR, UsageStatus.PLACEHOLDER):
                return error_color(self._palette)
            if status in (UsageStatus.BLOCKED, UsageStatus.INTERRUPTED):
                return warning_color(self._palette)
            if status is UsageStatus.CANCELLED:
                return muted_text(self._palette)
        if role == Qt.ItemDataRole.ToolTipRole:
            if name == "Error" and row.error:
                return row.error
            if name == "Model" and row.requested_model:
                return f"Asked for {row.requested_model}"
            if name == "Tokens":
                exact = "exact" if row.tokens_exact else "estimated"
                return f"{row.prompt_tokens} prompt + {row.response_tokens} response ({exact})"
        return None

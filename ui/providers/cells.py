"""The small Qt pieces the providers window's three tables share: read-only cells, row
buttons, a table set up the same way, bold titles and coloured notes."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
)

from halext_desktop.ui.theme import css, error_color, muted_text, warning_color

DOT = "●"


def item(text: str, tooltip: str = "") -> QTableWidgetItem:
    """A selectable, read-only cell."""
    cell = QTableWidgetItem(text)
    cell.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tooltip:
        cell.setToolTip(tooltip)
    return cell


def small_button(text: str, tooltip: str) -> QPushButton:
    """A button for a table row; its tooltip is also its accessible name (the text alone,
    "Test", does not say which row it acts on)."""
    b = QPushButton(text)
    b.setToolTip(tooltip)
    b.setAccessibleName(tooltip)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    return b


def row_button(text: str, tooltip: str) -> QToolButton:
    """A compact button for a table row with several of them: a push button is at least
    ~75 px wide whatever its text, and three per row took the width the row's details
    need. Its tooltip is also its accessible name, as for ``small_button``."""
    b = QToolButton()
    b.setText(text)
    b.setToolTip(tooltip)
    b.setAccessibleName(tooltip)
    b.setAutoRaise(False)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    return b


def table(columns: Sequence[str], stretch: str) -> QTableWidget:
    """A read-only, single-row-selection table; column ``stretch`` takes the spare width,
    the others fit their contents."""
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(list(columns))
    t.verticalHeader().setVisible(False)
    t.verticalHeader().setDefaultSectionSize(34)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setAlternatingRowColors(True)
    t.setWordWrap(False)
    t.setShowGrid(False)
    header = t.horizontalHeader()
    header.setHighlightSections(False)
    for i, name in enumerate(columns):
        mode = (
            QHeaderView.ResizeMode.Stretch
            if name == stretch
            else QHeaderView.ResizeMode.ResizeToContents
        )
        header.setSectionResizeMode(i, mode)
    return t


def bold(label: QLabel, scale: float = 1.0) -> QLabel:
    f = QFont(label.font())
    f.setBold(True)
    if scale != 1.0:
        f.setPointSizeF(f.pointSizeF() * scale)
    label.setFont(f)
    return label


def style_note(label: QLabel, kind: str, pal: QPalette) -> None:
    """Colour a note for ``kind`` ("error", "warning", else muted) from ``pal``, the
    palette of the window it sits in (the label's own palette carries its style sheet's
    colour). A style sheet is set only when it changes: setting one posts a palette change,
    which would restyle again."""
    color = {"error": error_color(pal), "warning": warning_color(pal)}.get(kind, muted_text(pal))
    sheet = f"color: {css(color)};"
    if label.styleSheet() != sheet:
        label.setStyleSheet(sheet)

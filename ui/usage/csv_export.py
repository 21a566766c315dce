"""[Export CSV]: exactly the rows the table shows — its filters and its sort order — with the
table's headers and cell texts, so the file matches what the user saw."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, Qt


def shown_rows(model: QAbstractItemModel) -> list[list[str]]:
    """The display text of every cell of ``model`` (the view's sorting, filtering proxy),
    row by row, in the order shown."""
    return [
        [
            str(model.index(r, c).data(Qt.ItemDataRole.DisplayRole) or "")
            for c in range(model.columnCount())
        ]
        for r in range(model.rowCount())
    ]


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Write ``header`` then ``rows`` to ``path`` as UTF-8 CSV; returns how many rows.
    Raises OSError when the file cannot be written."""
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)

"""The usage window: where requests went, how fast, how often they failed, tokens over time.

Every number comes from the local ``ai_usage_logs`` table through ``storage.usage``'s SQL
reports. Reading runs on the database owner's thread (via the Bridge), never on the GUI
thread, so a large log cannot freeze the window; each load carries a generation number and
a newer load cancels the older one, whose late answer is ignored.

The charts follow the range selector; the table below them also follows its own filters
(model, route, status) and [Export CSV] writes exactly the rows it shows, in the order shown
(``csv_export``). The bottom bar keeps or clears the usage log (``retention``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QFont, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.types import UsageStatus
from halext_desktop.storage.logfile import see_the_log
from halext_desktop.storage.usage import TokenBucket
from halext_desktop.ui.charts import BarChartCard, TimeSeriesCard, bucket_starts
from halext_desktop.ui.text import plain
from halext_desktop.ui.theme import css, error_color, muted_text
from halext_desktop.ui.usage.csv_export import shown_rows, write_csv
from halext_desktop.ui.usage.retention import RetentionBar
from halext_desktop.ui.usage.snapshot import (
    DEFAULT_RANGE,
    RANGES,
    ROW_LIMIT,
    UsageFilters,
    UsageSnapshot,
    range_phrase,
    read_snapshot,
)
from halext_desktop.ui.usage.table_model import COLUMNS, SORT_ROLE, UsageTableModel
from halext_desktop.ui.window_close import close_row

if TYPE_CHECKING:
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.qt_settings import SettingsNotifier
    from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)

MAX_CHART_MODELS = 8  # busiest models drawn; the rest are counted in a note
ALL = ""  # the combo boxes' "no filter" value
STATUSES = tuple(s.value for s in UsageStatus)


def _set_sheet(widget: QWidget, sheet: str) -> None:
    """Set a style sheet only when it changes (setting one posts a palette change)."""
    if widget.styleSheet() != sheet:
        widget.setStyleSheet(sheet)


class UsageDashboard(QWidget):
    """Charts and the request table over the local usage log.

    Args:
        services: the app's Services (``usage``, ``settings``; ``routes()`` for route names).
        bridge: runs the report queries off the GUI thread.
        notifier: settings changes (the retention shown follows Settings → Data).

    Attributes:
        requests_chart, latency_chart, errors_chart, tokens_chart: the four chart cards.
        table: the recent requests; ``model_filter``, ``route_filter``, ``status_filter``.
        retention: the bottom bar (keep usage for N days, clear), a ``RetentionBar``.

    Signals:
        sig_loaded(): a load finished and its numbers are on screen.
        sig_load_failed(str): a load failed; the message is shown in the status line too.
        sig_changed(int): rows were deleted (clear or retention); how many.
    """

    sig_loaded = Signal()
    sig_load_failed = Signal(str)
    sig_changed = Signal(int)

    def __init__(
        self,
        services: Services,
        bridge: Bridge,
        notifier: SettingsNotifier,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("UsageDashboard")
        self.setWindowTitle("Usage — Halext Desktop")
        self._svc = services
        self._bridge = bridge
        self._range = DEFAULT_RANGE
        self._gen = 0
        self._pending: Future[Any] | None = None
        self._snapshot: UsageSnapshot | None = None
        self._loaded_once = False
        self._sized = False
        self._busy_note = ""

        # ---- top: title, range, status, refresh ------------------------------------------
        title = QLabel("Usage")
        title.setObjectName("DashboardTitle")
        tf = QFont(title.font())
        tf.setBold(True)
        tf.setPointSizeF(tf.pointSizeF() * 1.35)
        title.setFont(tf)
        self.range_group = QButtonGroup(self)
        self.range_group.setExclusive(True)
        self.range_buttons: dict[str, QPushButton] = {}
        self.range_box = range_box = QFrame()
        range_box.setObjectName("RangeBox")
        rl = QHBoxLayout(range_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(0)
        for key, text, phrase in RANGES:
            b = QPushButton(text)
            b.setCheckable(True)
            b.setObjectName("RangeButton")
            b.setAccessibleName(f"Show usage {phrase}")
            b.setToolTip(f"Usage {phrase}")
            b.setChecked(key == self._range)
            b.clicked.connect(lambda _c=False, k=key: self.set_range(k))
            self.range_group.addButton(b)
            self.range_buttons[key] = b
            rl.addWidget(b)
        self.status_label = QLabel("")
        self.status_label.setObjectName("DashboardStatus")
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the usage log again")
        self.refresh_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.setSpacing(12)
        top.addWidget(title)
        top.addSpacing(8)
        top.addWidget(range_box)
        top.addWidget(self.status_label, 1)
        top.addWidget(self.refresh_button)

        # ---- charts (or the empty state) -------------------------------------------------
        self.requests_chart = BarChartCard("Requests by model")
        self.latency_chart = BarChartCard("Latency and time to first token", unit="ms")
        self.errors_chart = BarChartCard(
            "Error rate by model", unit="%", decimals=1, danger=True, ceiling=100.0
        )
        self.tokens_chart = TimeSeriesCard("Tokens over time", unit="tokens")
        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(10)
        grid.addWidget(self.requests_chart, 0, 0)
        grid.addWidget(self.latency_chart, 0, 1)
        grid.addWidget(self.errors_chart, 1, 0)
        grid.addWidget(self.tokens_chart, 1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        self.empty_label = QLabel("")
        self.empty_label.setObjectName("EmptyState")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.chart_stack = QStackedWidget()
        # In a short window the charts scroll rather than squash: each chart keeps the
        # height its labels need, so bars and value labels never overlap.
        charts_scroll = QScrollArea()
        charts_scroll.setWidgetResizable(True)
        charts_scroll.setFrameShape(QFrame.Shape.NoFrame)
        charts_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        charts_scroll.setWidget(grid_host)
        self.chart_stack.addWidget(charts_scroll)
        self.chart_stack.addWidget(self.empty_label)

        # ---- the table and its filters ---------------------------------------------------
        table_title = QLabel("Recent requests")
        ttf = QFont(table_title.font())
        ttf.setBold(True)
        table_title.setFont(ttf)
        self.model_filter = self._combo("Filter by model", "All models")
        self.route_filter = self._combo("Filter by route", "All routes")
        self.status_filter = self._combo("Filter by status", "All statuses")
        for s in STATUSES:
            self.status_filter.addItem(s, s)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the rows shown below (with these filters) as CSV")
        self.export_button.clicked.connect(self._export_clicked)
        filters = QHBoxLayout()
        filters.setSpacing(8)
        filters.addWidget(table_title)
        filters.addSpacing(8)
        filters.addWidget(self.model_filter)
        filters.addWidget(self.route_filter)
        filters.addWidget(self.status_filter)
        filters.addStretch(1)
        self.rows_label = QLabel("")
        self.rows_label.setObjectName("RowsNote")
        filters.addWidget(self.rows_label)
        filters.addWidget(self.export_button)

        self.table_model = UsageTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.table_model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setObjectName("UsageTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        hh = self.table.horizontalHeader()
        hh.setHighlightSections(False)
        hh.setStretchLastSection(True)
        for i, name in enumerate(COLUMNS):
            if name in ("Time", "Model", "Endpoint"):
                hh.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
            elif name != "Error":
                hh.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        hh.resizeSection(0, 150)
        hh.resizeSection(1, 200)
        hh.resizeSection(3, 130)
        self.no_match_label = QLabel("No requests match these filters.")
        self.no_match_label.setObjectName("NoMatch")
        self.no_match_label.setVisible(False)
        table_box = QWidget()
        tl = QVBoxLayout(table_box)
        tl.setContentsMargins(0, 6, 0, 0)
        tl.setSpacing(6)
        tl.addLayout(filters)
        tl.addWidget(self.no_match_label)
        tl.addWidget(self.table, 1)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.chart_stack)
        self.splitter.addWidget(table_box)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        # ---- bottom: retention and clear -------------------------------------------------
        self.retention = RetentionBar(services, bridge, notifier)
        # The question before clearing names the total when the window shows all of it.
        self.retention.known_total = lambda: (
            self._snapshot.total if self._snapshot and self._range == "all" else None
        )
        self.retention.sig_deleted.connect(self._after_delete)
        self.retention.sig_status.connect(lambda text, error: self._set_status(text, error=error))

        root = QVBoxLayout(self)
        root.setContentsMargins(16, 12, 16, 12)
        root.setSpacing(10)
        root.addLayout(top)
        root.addWidget(self.splitter, 1)
        bottom, self.close_button = close_row(self, "Usage")
        bottom.insertWidget(0, self.retention, 1)
        root.addLayout(bottom)

        self.model_filter.currentIndexChanged.connect(self._filters_changed)
        self.route_filter.currentIndexChanged.connect(self._filters_changed)
        self.status_filter.currentIndexChanged.connect(self._filters_changed)
        self._restyle()
        self.resize(1180, 860)

    # ---- public API ----------------------------------------------------------------------

    @property
    def range_key(self) -> str:
        return self._range

    @property
    def loading(self) -> bool:
        return self._pending is not None

    @property
    def snapshot(self) -> UsageSnapshot | None:
        """The numbers on screen (None before the first load)."""
        return self._snapshot

    def filters(self) -> UsageFilters:
        def val(combo: QComboBox) -> str | None:
            data = combo.currentData()
            return data if isinstance(data, str) and data != ALL else None

        return UsageFilters(val(self.model_filter), val(self.route_filter), val(self.status_filter))

    def set_range(self, key: str) -> None:
        """Show ``24h``, ``7d``, ``30d`` or ``all``, and reload."""
        if key not in self.range_buttons:
            raise ValueError(f"unknown range {key!r}: use one of {', '.join(self.range_buttons)}")
        self.range_buttons[key].setChecked(True)
        if key != self._range or not self._loaded_once:
            self._range = key
            self.refresh()

    def refresh(self) -> None:
        """Read the reports and rows again, off the GUI thread; a load still running is
        cancelled and its answer ignored."""
        self._gen += 1
        gen = self._gen
        if self._pending is not None:
            self._pending.cancel()
        usage, range_key, filters = self._svc.usage, self._range, self.filters()
        self._set_status("Loading…")
        self.refresh_button.setEnabled(False)

        async def load() -> UsageSnapshot:
            return await usage.run(read_snapshot, range_key, filters)

        self._pending = self._bridge.call(
            load(),
            lambda snap: self._on_loaded(gen, snap),
            lambda exc: self._on_failed(gen, exc),
            owner=self,
        )

    def export_csv(self, path: str | Path) -> int:
        """Write the rows the table shows (filters and sort order included) to ``path``
        as CSV with the table's headers and cell texts; returns how many rows."""
        return write_csv(path, COLUMNS, self.visible_rows())

    def visible_rows(self) -> list[list[str]]:
        """The table's cell texts, row by row, as displayed."""
        return shown_rows(self.proxy)

    # ---- loading -------------------------------------------------------------------------

    def _on_loaded(self, gen: int, snap: UsageSnapshot) -> None:
        if gen != self._gen:
            return  # an older load, overtaken by a newer one
        self._pending = None
        self._snapshot = snap
        self._loaded_once = True
        self.refresh_button.setEnabled(True)
        self._fill_filters(snap)
        self._fill_charts(snap)
        self._fill_table(snap)
        phrase = range_phrase(snap.range_key)
        if snap.total == 0 and snap.blocked_total == 0:
            self.chart_stack.setCurrentWidget(self.empty_label)
            self.empty_label.setText(
                f"<p style='font-size:large'><b>No requests {phrase}.</b></p>"
                "<p>Every chat, assistant and command-line request is counted here: the "
                "model that answered, its route, latency, time to first token and tokens."
                + (" Older requests are in a longer range." if snap.has_older else "")
                + "</p>"
            )
        else:
            self.chart_stack.setCurrentIndex(0)
        noun = "request" if snap.total == 1 else "requests"
        updated = snap.read_at.astimezone().strftime("%H:%M:%S")
        note = f" · {self._busy_note}" if self._busy_note else ""
        self._busy_note = ""
        blocked = (
            f" · {snap.blocked_total:,} blocked (not sent, not counted)"
            if snap.blocked_total
            else ""
        )
        self._set_status(f"{snap.total:,} {noun} {phrase}{blocked} · updated {updated}{note}")
        self.sig_loaded.emit()

    def _on_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._gen:
            return
        self._pending = None
        self.refresh_button.setEnabled(True)
        if isinstance(exc, RouteError):
            text = plain(exc.one_line())
        elif isinstance(exc, ValueError | OSError):
            text = str(exc)
        else:
            log.error("reading usage failed", exc_info=exc)
            text = f"unexpected error ({type(exc).__name__}); {see_the_log()}"
        message = f"Could not read the usage log: {text}"
        self._set_status(message, error=True)
        self.sig_load_failed.emit(message)

    def _fill_filters(self, snap: UsageSnapshot) -> None:
        models = [c.model for c in snap.requests]
        models += [c.model for c in snap.blocked if c.model not in models]
        routes = set(self._configured_routes()) | set(snap.routes)
        self._refill(self.model_filter, models)
        self._refill(self.route_filter, sorted(routes))

    def _configured_routes(self) -> list[str]:
        return [route.route_id for route in self._svc.routes()]

    @staticmethod
    def _refill(combo: QComboBox, values: Sequence[str]) -> None:
        """New choices, keeping the current one (even if the range has none of it, so a
        filter never silently disappears)."""
        current = combo.currentData()
        combo.blockSignals(True)
        try:
            while combo.count() > 1:
                combo.removeItem(1)
            wanted = list(values)
            if isinstance(current, str) and current != ALL and current not in wanted:
                wanted.append(current)
            for v in wanted:
                combo.addItem(v, v)
            idx = combo.findData(current) if isinstance(current, str) else 0
            combo.setCurrentIndex(max(0, idx))
        finally:
            combo.blockSignals(False)

    def _fill_charts(self, snap: UsageSnapshot) -> None:
        # One order for the three per-model charts (busiest first), so a model sits at the
        # same height in each and the eye can compare across them.
        # Blocked rows are counted apart: a refused request sent nothing, so it is no
        # request of the model it named. Models with only blocked rows come last.
        everyone = [c.model for c in snap.requests]
        everyone += [c.model for c in snap.blocked if c.model not in everyone]
        order = everyone[:MAX_CHART_MODELS]
        hidden = max(0, len(everyone) - len(order))
        more = f"{hidden} more model{'s' if hidden != 1 else ''} in the table" if hidden else ""

        counts = {c.model: c.requests for c in snap.requests}
        series = [("Requests", [counts.get(m, 0) for m in order])]
        if snap.blocked:
            blocked = {c.model: c.requests for c in snap.blocked}
            series.append(("Blocked (not sent)", [blocked.get(m, 0) for m in order]))
        self.requests_chart.set_data(order, series)
        notes = [more] if more else []
        if snap.blocked:
            n = snap.blocked_total
            notes.insert(
                0,
                f"{n:,} blocked request{'s' if n != 1 else ''} counted apart: refused by "
                "policy, nothing sent",
            )
        self.requests_chart.set_note(" · ".join(notes))

        lat = {m.model: m for m in snap.latency}
        lat_order = [m for m in order if m in lat]
        self.latency_chart.set_data(
            lat_order,
            [
                ("Average latency", [lat[m].avg_latency_ms for m in lat_order]),
                ("Time to first token", [lat[m].avg_ttft_ms for m in lat_order]),
            ],
        )
        self.latency_chart.set_note(
            "Averages over successful requests" + ("" if lat_order else " — none in this range")
        )

        err = {e.model: e for e in snap.errors}
        err_order = [m for m in order if m in err]
        self.errors_chart.set_data(
            err_order, [("Error rate", [err[m].rate * 100 for m in err_order])]
        )
        self.errors_chart.set_note(
            "Failed (or halext's placeholder) ÷ requests; stopped ones are not errors, "
            "blocked ones are not requests" + (f" · {more}" if more else "")
        )

        self._fill_tokens(snap)

    def _fill_tokens(self, snap: UsageSnapshot) -> None:
        by_start = {b.start: b for b in snap.tokens}
        if snap.since is not None:
            first = snap.since
        elif snap.tokens:
            first = snap.tokens[0].start
        else:
            first = snap.read_at
        last = max([snap.read_at, *(b.start for b in snap.tokens)])
        # Every bucket of the window, zero-filled: a quiet hour is a zero, not a straight
        # line drawn between its neighbours.
        times = bucket_starts(first, last, snap.bucket) if snap.tokens or snap.since else []
        empty = TokenBucket(datetime.min.replace(tzinfo=UTC), 0, 0, 0, 0)
        rows = [by_start.get(t, empty) for t in times]
        self.tokens_chart.set_data(
            times,
            [
                ("Prompt tokens", [b.prompt_tokens for b in rows]),
                ("Response tokens", [b.response_tokens for b in rows]),
            ],
            bucket=snap.bucket,
        )
        estimated = any(not r.tokens_exact for r in snap.rows)
        unit = "hour" if snap.bucket == "hour" else "day (UTC)"
        self.tokens_chart.set_note(
            f"Per {unit}" + (" · halext counts are estimates" if estimated else "")
        )

    def _fill_table(self, snap: UsageSnapshot) -> None:
        self.table_model.set_rows(snap.rows)
        n = len(snap.rows)
        if n >= ROW_LIMIT:
            self.rows_label.setText(f"newest {ROW_LIMIT:,} shown")
        else:
            self.rows_label.setText(f"{n:,} row{'s' if n != 1 else ''}")
        self.no_match_label.setVisible(n == 0 and snap.filters.active and snap.total > 0)

    # ---- changes -------------------------------------------------------------------------

    def _after_delete(self, n: int, why: str) -> None:
        noun = "request" if n == 1 else "requests"
        self._busy_note = f"deleted {n:,} {noun}" + (f" {why}" if why else "")
        self.sig_changed.emit(int(n))
        self.refresh()

    def _filters_changed(self, _index: int = 0) -> None:
        self.refresh()

    def _export_clicked(self) -> None:
        default = str(Path.home() / f"halext-usage-{self._range}.csv")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export usage as CSV", default, "CSV files (*.csv);;All files (*)"
        )
        if not path:
            return
        try:
            n = self.export_csv(path)
        except OSError as exc:
            self._set_status(f"Could not write {path}: {exc.strerror or exc}", error=True)
            return
        self._set_status(f"Exported {n:,} row{'s' if n != 1 else ''} to {path}")

    # ---- looks ---------------------------------------------------------------------------

    def _combo(self, accessible: str, everything: str) -> QComboBox:
        combo = QComboBox()
        combo.setAccessibleName(accessible)
        combo.setToolTip(accessible)
        combo.addItem(everything, ALL)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        combo.setMinimumContentsLength(10)
        combo.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        return combo

    def _set_status(self, text: str, *, error: bool = False) -> None:
        pal = self.palette()
        color = error_color(pal) if error else muted_text(pal)
        self.status_label.setStyleSheet(f"color: {css(color)};")
        self.status_label.setText(text)

    def _restyle(self) -> None:
        # Style sheets go on leaf widgets (and the range buttons' own box) only: a container
        # with a style sheet stops passing palette changes to its children, and the charts
        # must follow the app's light/dark switch.
        pal = self.palette()
        hl = pal.color(QPalette.ColorRole.Highlight)
        hl_text = pal.color(QPalette.ColorRole.HighlightedText)
        button = pal.color(QPalette.ColorRole.Button)
        text = pal.color(QPalette.ColorRole.ButtonText)
        border = muted_text(pal)
        _set_sheet(
            self.range_box,
            f"#RangeButton {{ background: {css(button)}; color: {css(text)};"
            f" border: 1px solid {css(border)}; padding: 4px 14px; margin: 0; }}"
            f" #RangeButton:checked {{ background: {css(hl)}; color: {css(hl_text)};"
            f" border-color: {css(hl)}; }}",
        )
        muted = f"color: {css(muted_text(pal))};"
        for label in (self.empty_label, self.rows_label, self.no_match_label):
            _set_sheet(label, muted)
        self.retention.restyle(pal)
        self.table_model.set_palette(pal)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._restyle()
        super().changeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._sized:
            # Charts get most of the height at first; sizes set before the first layout
            # are lost.
            self._sized = True
            total = max(self.splitter.height(), 300)
            charts = total * 72 // 100
            self.splitter.setSizes([charts, total - charts])
        # Every time the window comes back (not when the OS merely restores it): new
        # requests may have been logged while it was hidden.
        if not event.spontaneous() and self._pending is None:
            self.refresh()

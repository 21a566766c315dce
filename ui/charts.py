"""Chart cards for the usage dashboard, on QtCharts, coloured from the current palette.

Each card is a titled frame around one ``QChartView``. The cards own their series and
expose what they plot (``values()``) read back from the QtCharts objects themselves, so a
test checks the numbers the user actually sees, not a copy kept beside them.

Why horizontal bars for everything per model: model ids are long (``client:3:qwen2.5:7b``)
and only a vertical category axis gives them room to be read without rotating or
overlapping labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from PySide6.QtCharts import (
    QAbstractAxis,
    QAbstractBarSeries,
    QAreaSeries,
    QBarCategoryAxis,
    QBarSet,
    QChart,
    QChartView,
    QDateTimeAxis,
    QHorizontalBarSeries,
    QLineSeries,
    QValueAxis,
)
from PySide6.QtCore import QDate, QDateTime, QEvent, QMargins, QPointF, QRectF, Qt, QTime
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QToolTip, QVBoxLayout, QWidget

from halext_desktop.ui.theme import error_color, is_dark, mix, muted_text

# Series colours, in order, for light and dark bases (chosen to stay apart for the
# common colour-vision deficiencies: blue, amber, teal, violet).
_SERIES_LIGHT = ("#2563eb", "#d97706", "#0f9d8a", "#7c3aed")
_SERIES_DARK = ("#6ea8fe", "#f5b94a", "#4fd1b5", "#b39afd")

# Room on the value axis for the value labels drawn outside the bar ends.
_LABEL_HEADROOM = 1.22
# Long model ids are elided in the middle to this width; the tooltip has the full id.
CATEGORY_LABEL_PX = 190
# At most this many date labels: each "MMM d" needs ~60 px and a card is ~550 px wide.
MAX_TIME_TICKS = 8


def series_color(palette: QPalette, index: int) -> QColor:
    """The ``index``-th series colour for this palette."""
    colors = _SERIES_DARK if is_dark(palette) else _SERIES_LIGHT
    return QColor(colors[index % len(colors)])


def nice_axis(top: float, *, integer: bool = False) -> tuple[float, int]:
    """``(maximum, tick count)`` for a value axis from 0 whose ticks fall on round steps
    (1, 2, 2.5 or 5 × 10^n) — 0, 10, 20, 30 rather than 0, 13, 25, 38. ``integer``
    keeps steps whole (counts)."""
    if top <= 0:
        return 1.0, 2
    raw = top / 5
    exp = math.floor(math.log10(raw))
    step = 10.0 ** (exp + 1)
    for mult in (1.0, 2.0, 2.5, 5.0):
        if mult * 10**exp >= raw * (1 - 1e-9):
            step = mult * 10**exp
            break
    if integer:
        step = max(1.0, math.ceil(step))
    ticks = max(1, math.ceil(top / step - 1e-9))
    return ticks * step, ticks + 1


def style_chart(chart: QChart, palette: QPalette) -> None:
    """Paint ``chart`` (background, title, legend, axes, grid) from ``palette``."""
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    chart.setBackgroundBrush(QBrush(base))
    chart.setBackgroundPen(QPen(Qt.PenStyle.NoPen))
    chart.setBackgroundRoundness(0)
    chart.setPlotAreaBackgroundVisible(False)
    chart.setTitleBrush(QBrush(text))
    legend = chart.legend()
    legend.setLabelColor(text)
    legend.setBrush(QBrush(Qt.BrushStyle.NoBrush))
    legend.setPen(QPen(Qt.PenStyle.NoPen))
    grid = mix(base, text, 0.12)
    line = mix(base, text, 0.35)
    labels = mix(text, base, 0.18)
    for axis in chart.axes():
        axis.setLabelsBrush(QBrush(labels))
        axis.setTitleBrush(QBrush(muted_text(palette)))
        axis.setGridLineColor(grid)
        axis.setMinorGridLineColor(grid)
        axis.setLinePenColor(line)
        axis.setShadesVisible(False)


class ChartCard(QFrame):
    """A titled card holding one chart, a one-line note under the title, and a themed
    ``QChartView``. Subclasses fill ``self.chart``."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChartCard")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.title_label = QLabel(title)
        self.title_label.setObjectName("ChartTitle")
        f = QFont(self.title_label.font())
        f.setBold(True)
        self.title_label.setFont(f)
        self.note_label = QLabel("")
        self.note_label.setObjectName("ChartNote")
        self.note_label.setWordWrap(True)
        self.note_label.setVisible(False)
        self.chart = QChart()
        self.chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        self.chart.setMargins(QMargins(2, 2, 8, 2))
        self.chart.layout().setContentsMargins(0, 0, 0, 0)
        self.chart.legend().setVisible(False)
        self.view = QChartView(self.chart)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.view.setFrameShape(QFrame.Shape.NoFrame)
        self.view.setMinimumHeight(180)
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 8)
        lay.setSpacing(2)
        lay.addWidget(self.title_label)
        lay.addWidget(self.note_label)
        lay.addWidget(self.view, 1)
        self._restyle()

    @property
    def title(self) -> str:
        return self.title_label.text()

    def set_note(self, text: str) -> None:
        """A quiet line under the title ("3 more models not shown"); empty hides it."""
        self.note_label.setText(text)
        self.note_label.setVisible(bool(text))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._restyle()
        super().changeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        # Painted rather than styled: a widget with a style sheet stops inheriting palette
        # changes, and the card must follow the app's light/dark switch.
        pal = self.palette()
        base = pal.color(QPalette.ColorRole.Base)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(mix(base, pal.color(QPalette.ColorRole.Text), 0.14), 1))
        painter.setBrush(QBrush(base))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 8, 8)
        painter.end()

    def _restyle(self) -> None:
        pal = self.palette()
        base = pal.color(QPalette.ColorRole.Base)
        note_pal = QPalette(self.note_label.palette())
        note_pal.setColor(QPalette.ColorRole.WindowText, muted_text(pal))
        self.note_label.setPalette(note_pal)
        self.view.setBackgroundBrush(QBrush(base))
        self.update()
        style_chart(self.chart, pal)
        self._recolor(pal)

    def _recolor(self, palette: QPalette) -> None:
        """Series colours for the palette (subclasses)."""

    def _clear(self) -> None:
        self.chart.removeAllSeries()
        for axis in list(self.chart.axes()):
            self.chart.removeAxis(axis)


class BarChartCard(ChartCard):
    """Horizontal bars per category (model), one bar set per measure (grouped when
    several). The first category is drawn at the top.

    Args:
        title: the card title.
        unit: appended to value labels ("ms", "%"); "" for plain counts.
        decimals: digits after the point in value labels (values are rounded to them).
        danger: colour the (single) set with the palette's error colour.
        ceiling: the largest value the measure can have (100 for a rate in %): the axis
            never goes past it.
    """

    def __init__(
        self,
        title: str,
        *,
        unit: str = "",
        decimals: int = 0,
        danger: bool = False,
        ceiling: float | None = None,
        parent: QWidget | None = None,
    ) -> None:
        self._unit = unit
        self._decimals = decimals
        self._danger = danger
        self._ceiling = ceiling
        self._series: QHorizontalBarSeries | None = None
        self._sets: list[QBarSet] = []
        self._categories: list[str] = []  # full names, top first
        super().__init__(title, parent)

    def set_data(
        self, categories: Sequence[str], sets: Sequence[tuple[str, Sequence[float | None]]]
    ) -> None:
        """Plot ``sets`` — ``(label, one value per category)`` — over ``categories``.

        None (not measured) is drawn as an empty bar; the legend shows when there are
        several sets.
        """
        self._clear()
        self._sets = []
        self._categories = list(categories)
        series = QHorizontalBarSeries()
        series.setBarWidth(0.72 if len(sets) > 1 else 0.6)
        # QtCharts puts category 0 at the bottom: feed them reversed so the first is on top.
        rev = list(reversed(range(len(categories))))
        top = 0.0
        for label, values in sets:
            bar_set = QBarSet(label)
            for i in rev:
                v = values[i]
                shown = round(float(v), self._decimals) if v is not None else 0.0
                top = max(top, shown)
                bar_set.append(shown)
            series.append(bar_set)
            self._sets.append(bar_set)
        series.setLabelsVisible(True)
        # Room for the value after the bar, unless that would take the axis past what the
        # measure can be (an error rate of 100 % on a 125 % axis): then inside the bar.
        capped = self._ceiling is not None and top * _LABEL_HEADROOM > self._ceiling
        series.setLabelsPosition(
            QAbstractBarSeries.LabelsPosition.LabelsInsideEnd
            if capped
            else QAbstractBarSeries.LabelsPosition.LabelsOutsideEnd
        )
        series.setLabelsPrecision(12)
        series.setLabelsFormat(f"@value {self._unit}".rstrip())
        series.hovered.connect(self._on_hover)
        self.chart.addSeries(series)
        self._series = series

        cat_axis = QBarCategoryAxis()
        cat_axis.append(self._display_names([self._categories[i] for i in rev]))
        value_axis = QValueAxis()
        wanted = top * _LABEL_HEADROOM
        if self._ceiling is not None:
            wanted = min(wanted, self._ceiling)
        maximum, ticks = nice_axis(wanted, integer=self._decimals == 0)
        if self._ceiling is not None and maximum > self._ceiling:
            maximum, ticks = nice_axis(self._ceiling, integer=self._decimals == 0)
        value_axis.setRange(0.0, maximum)
        value_axis.setTickCount(ticks)
        whole_steps = (maximum / (ticks - 1)).is_integer()
        value_axis.setLabelFormat("%.0f" if whole_steps else f"%.{max(1, self._decimals)}f")
        if self._unit:
            value_axis.setTitleText(self._unit)
        self.chart.addAxis(cat_axis, Qt.AlignmentFlag.AlignLeft)
        self.chart.addAxis(value_axis, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(cat_axis)
        series.attachAxis(value_axis)
        cat_axis.setGridLineVisible(False)
        self.chart.legend().setVisible(len(sets) > 1)
        self.chart.legend().setAlignment(Qt.AlignmentFlag.AlignTop)
        # Enough height per model that two grouped bars and their labels never touch.
        per_row = 16 * len(sets) if len(sets) > 1 else 22
        self.view.setMinimumHeight(max(180, 56 + per_row * len(categories)))
        self._restyle()

    def _display_names(self, names: Sequence[str]) -> list[str]:
        fm = QFontMetrics(self.font())
        out: list[str] = []
        for name in names:
            label = fm.elidedText(name, Qt.TextElideMode.ElideMiddle, CATEGORY_LABEL_PX)
            # Category labels must be unique or QtCharts merges them.
            while label in out:
                label += "\u200b"
            out.append(label)
        return out

    def _recolor(self, palette: QPalette) -> None:
        text = palette.color(QPalette.ColorRole.Text)
        for i, bar_set in enumerate(self._sets):
            color = error_color(palette) if self._danger else series_color(palette, i)
            bar_set.setColor(color)
            bar_set.setBorderColor(color)
            bar_set.setLabelColor(text)

    def _on_hover(self, status: bool, index: int, bar_set: QBarSet) -> None:
        if not status or not self._categories:
            QToolTip.hideText()
            return
        name = self._categories[len(self._categories) - 1 - index]
        value = bar_set.at(index)
        shown = f"{value:,.{self._decimals}f} {self._unit}".rstrip()
        QToolTip.showText(self.cursor().pos(), f"{name}\n{bar_set.label()}: {shown}", self)

    def categories(self) -> list[str]:
        """Full category names, top first."""
        return list(self._categories)

    def values(self) -> dict[str, dict[str, float]]:
        """What is plotted, read from the bar sets: ``{set label: {category: value}}``."""
        out: dict[str, dict[str, float]] = {}
        n = len(self._categories)
        for bar_set in self._sets:
            out[bar_set.label()] = {
                self._categories[n - 1 - i]: float(bar_set.at(i)) for i in range(bar_set.count())
            }
        return out

    def value_range(self) -> tuple[float, float]:
        """(min, max) of the value axis as drawn."""
        for axis in self.chart.axes(Qt.Orientation.Horizontal):
            if isinstance(axis, QValueAxis):
                return float(axis.min()), float(axis.max())
        return 0.0, 0.0

    def axis_labels(self) -> list[str]:
        """The category labels as drawn (possibly elided), top first."""
        for axis in self.chart.axes(Qt.Orientation.Vertical):
            if isinstance(axis, QBarCategoryAxis):
                return list(reversed(axis.categories()))
        return []


def _to_qdatetime(when: datetime, *, as_calendar_day: bool) -> QDateTime:
    if as_calendar_day:
        # A UTC day bucket is labelled by its date, not shifted into the local time zone
        # (which would print the previous day west of Greenwich).
        return QDateTime(QDate(when.year, when.month, when.day), QTime(0, 0))
    return QDateTime.fromMSecsSinceEpoch(int(when.timestamp() * 1000))


class TimeSeriesCard(ChartCard):
    """Stacked areas over time: the first series at the bottom, each next one on top.

    ``set_data`` takes points already bucketed (hour or day) and zero-filled.
    """

    def __init__(self, title: str, *, unit: str = "", parent: QWidget | None = None) -> None:
        self._unit = unit
        self._names: list[str] = []
        self._lines: list[QLineSeries] = []  # cumulative upper edges, bottom series first
        self._areas: list[QAreaSeries] = []
        self._times: list[datetime] = []
        super().__init__(title, parent)

    def set_data(
        self,
        times: Sequence[datetime],
        series: Sequence[tuple[str, Sequence[float]]],
        *,
        bucket: str,
    ) -> None:
        """Plot ``series`` (``(label, one value per time)``) stacked over ``times`` (UTC
        bucket starts). ``bucket`` is ``hour`` or ``day`` (axis format and spacing)."""
        self._clear()
        self._names = [name for name, _ in series]
        self._lines, self._areas = [], []
        self._times = list(times)
        day = bucket == "day"
        xs = [float(_to_qdatetime(t, as_calendar_day=day).toMSecsSinceEpoch()) for t in times]
        cumulative = [0.0] * len(times)
        lower: QLineSeries | None = None
        top = 0.0
        for name, values in series:
            upper = QLineSeries()
            for i, v in enumerate(values):
                cumulative[i] += float(v)
                upper.append(QPointF(xs[i], cumulative[i]))
                top = max(top, cumulative[i])
            area = QAreaSeries(upper, lower) if lower is not None else QAreaSeries(upper)
            area.setName(name)
            area.setPointsVisible(len(times) <= 48)
            self.chart.addSeries(area)
            self._lines.append(upper)
            self._areas.append(area)
            lower = upper

        x_axis = QDateTimeAxis()
        x_axis.setFormat("MMM d" if day else "HH:mm")
        if xs:
            # QDateTimeAxis spaces its ticks evenly over the range: make the range a whole
            # number of tick steps (each a whole number of buckets) so every tick sits on a
            # bucket and labels never fall between days.
            bucket_ms = 86_400_000 if day else 3_600_000
            spans = max(1, len(xs) - 1)
            per_tick = math.ceil(spans / (MAX_TIME_TICKS - 1))
            n_ticks = math.ceil(spans / per_tick) + 1
            x_axis.setRange(
                QDateTime.fromMSecsSinceEpoch(int(xs[0])),
                QDateTime.fromMSecsSinceEpoch(int(xs[0] + (n_ticks - 1) * per_tick * bucket_ms)),
            )
            x_axis.setTickCount(n_ticks)
        y_axis = QValueAxis()
        maximum, ticks = nice_axis(top * 1.08, integer=True)
        y_axis.setRange(0.0, maximum)
        y_axis.setTickCount(ticks)
        y_axis.setLabelFormat("%.0f")
        if self._unit:
            y_axis.setTitleText(self._unit)
        self.chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
        self.chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)
        for area in self._areas:
            area.attachAxis(x_axis)
            area.attachAxis(y_axis)
        self.chart.legend().setVisible(len(series) > 1)
        self.chart.legend().setAlignment(Qt.AlignmentFlag.AlignTop)
        self._restyle()

    def _recolor(self, palette: QPalette) -> None:
        base = palette.color(QPalette.ColorRole.Base)
        for i, area in enumerate(self._areas):
            color = series_color(palette, i)
            pen = QPen(color)
            pen.setWidthF(1.6)
            area.setPen(pen)
            area.setBrush(QBrush(mix(base, color, 0.55 if is_dark(palette) else 0.45)))

    def times(self) -> list[datetime]:
        """The bucket starts plotted (UTC)."""
        return list(self._times)

    def values(self) -> dict[str, list[float]]:
        """What is plotted, per series, read back from the stacked line series."""
        out: dict[str, list[float]] = {}
        below: list[float] | None = None
        for name, line in zip(self._names, self._lines, strict=True):
            ys = [p.y() for p in line.points()]
            out[name] = [y - b for y, b in zip(ys, below, strict=True)] if below else ys
            below = ys
        return out


def bucket_starts(first: datetime, last: datetime, bucket: str) -> list[datetime]:
    """Every hour or day start from ``first`` to ``last`` inclusive (UTC), so a chart
    shows quiet periods as zero instead of joining distant points with a straight line."""
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    start = floor_bucket(first, bucket)
    end = floor_bucket(last, bucket)
    out: list[datetime] = []
    t = start
    while t <= end:
        out.append(t)
        t += step
    return out


def floor_bucket(when: datetime, bucket: str) -> datetime:
    """The start of the UTC hour or day holding ``when``."""
    w = when.astimezone(UTC)
    if bucket == "hour":
        return w.replace(minute=0, second=0, microsecond=0)
    return w.replace(hour=0, minute=0, second=0, microsecond=0)


def axis_of(chart: QChart, orientation: Qt.Orientation) -> QAbstractAxis | None:
    """The chart's first axis of ``orientation`` (tests, screenshots)."""
    axes = chart.axes(orientation)
    return axes[0] if axes else None

"""The model picker: a header button naming the current model and a searchable popup.

```
┌ filter: qwen_                                   ┐
│ LOCAL · Ollama local                            │
│   qwen2.5:7b           4.7 GB  Q4_K_M  32k ctx  │
│ SELF-HOSTED · halext                            │
│   client:3:qwen2.5:7b  Studio node   22 ms      │
│ CLOUD · halext                                  │
│   openai:gpt-4o-mini   (disabled: cloud is off) │
└─────────────────────────────────────────────────┘
```

Keyboard first: the filter keeps the focus, Up/Down move over pickable rows only, Enter
picks, Esc closes. The list is one flat item model rebuilt on each keystroke: a linear pass
over a few hundred prepared rows is far cheaper than a proxy model's per-row callbacks into
Python, and the view is uniform-height so only visible rows are painted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont, QFontMetrics, QKeyEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.display import route_label, route_name, route_title
from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.policy import (
    CLOUD_REASON,
    OFFLINE_REASON,
    Policy,
    halext_model_is_cloud,
)
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.types import Locality, ModelInfo, ModelListing
from halext_desktop.ui.text import plain

_LOCALITY_ORDER = {Locality.LOCAL: 0, Locality.SELF_HOSTED: 1, Locality.CLOUD: 2}
_LOCALITY_TITLE = {
    Locality.LOCAL: "LOCAL",
    Locality.SELF_HOSTED: "SELF-HOSTED",
    Locality.CLOUD: "CLOUD",
}
# Short forms for the row; the full policy sentence goes into the tooltip.
_SHORT_REASONS = {CLOUD_REASON: "cloud is off", OFFLINE_REASON: "offline"}


class RowKind(IntEnum):
    HEADER = 0
    MODEL = 1
    NOTE = 2  # a route that could not be listed, or "loading"


class Roles(IntEnum):
    KIND = Qt.ItemDataRole.UserRole + 1
    DETAIL = Qt.ItemDataRole.UserRole + 2
    REF = Qt.ItemDataRole.UserRole + 3
    REASON = Qt.ItemDataRole.UserRole + 4


@dataclass(frozen=True, slots=True)
class PickerRow:
    """One prepared line of the popup (prepared once per listing, filtered per keystroke)."""

    kind: RowKind
    text: str
    detail: str = ""
    ref: str | None = None
    enabled: bool = False
    reason: str | None = None  # why a model row is disabled (full sentence)
    haystack: str = ""  # lower-cased text the filter matches against
    tooltip: str = ""


class _HostLike(Protocol):
    # Read-only: the settings' hosts and endpoints are frozen dataclasses.
    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...


# ---- text helpers (pure, tested directly) ----------------------------------------------------


def format_size(size_bytes: int | None) -> str:
    """``4.7 GB`` (decimal GB, as Ollama and its users quote sizes); "" when unknown."""
    if not size_bytes or size_bytes <= 0:
        return ""
    if size_bytes < 100_000_000:
        return f"{size_bytes / 1_000_000:.0f} MB"
    return f"{size_bytes / 1_000_000_000:.1f} GB"


def format_context(tokens: int | None) -> str:
    """``32k ctx`` for 32768, ``128k ctx`` for 128000 or 131072; "" when unknown."""
    if not tokens or tokens <= 0:
        return ""
    if tokens < 1000:
        return f"{tokens} ctx"
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.0f}M ctx"
    # Providers quote either decimal (128000) or binary (131072) sizes; both read "128k".
    if tokens % 1000 == 0:
        k = tokens // 1000
    elif tokens % 1024 == 0:
        k = tokens // 1024
    else:
        k = round(tokens / 1000)
    return f"{k}k ctx"


def model_details(info: ModelInfo) -> str:
    """The muted part of a row: size, quantization, context, node, latency."""
    parts = [
        format_size(info.size_bytes),
        info.quantization or "",
        format_context(info.context_length),
        info.node_name or "",
        f"{info.latency_ms} ms" if info.latency_ms is not None else "",
    ]
    return "  ".join(p for p in parts if p)


def short_address(url: str) -> str:
    """``http://127.0.0.1:11434/`` → ``127.0.0.1:11434``."""
    text = url.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    return text.rstrip("/")


def default_route_title(route_id: str) -> str:
    """A route's name when the caller gave none: ``halext``, ``studio``; the default Ollama
    host (route ``ollama``) is named by its settings, else ``ollama``."""
    return route_name(route_id)


def route_titles(
    ollama_hosts: Sequence[_HostLike], openai_endpoints: Sequence[_HostLike] = ()
) -> dict[str, str]:
    """Route id → the name it is shown by, from the configured hosts: every host by the
    name the user gave it (the first Ollama host is the default route ``ollama``)."""
    titles: dict[str, str] = {}
    for i, host in enumerate(ollama_hosts):
        titles["ollama" if i == 0 else f"ollama@{host.name}"] = host.name
    for ep in openai_endpoints:
        titles[f"openai@{ep.name}"] = ep.name
    return titles


def short_reason(reason: str) -> str:
    return _SHORT_REASONS.get(reason, reason)


def error_line(title: str, error: RouteError | str) -> str:
    """``halext — signed out: sign in from Settings → Connections``."""
    if isinstance(error, RouteError):
        text = error.message[:1].lower() + error.message[1:] if error.message else ""
        if error.hint:
            text = f"{text}: {error.hint}"
    else:
        text = error
    return plain(f"{title} — {text}")


def build_rows(
    listing: ModelListing, policy: Policy, titles: Mapping[str, str] | None = None
) -> list[PickerRow]:
    """Group the listing by locality then route, headers first; unlisted routes last."""
    titles = titles or {}
    route_order: dict[str, int] = {}
    groups: dict[tuple[Locality, str], list[ModelInfo]] = {}
    for info in listing.models:
        route = info.ref.route_id
        route_order.setdefault(route, len(route_order))
        groups.setdefault((info.locality, route), []).append(info)

    rows: list[PickerRow] = []
    for locality, route in sorted(
        groups, key=lambda k: (_LOCALITY_ORDER.get(k[0], 9), route_order[k[1]])
    ):
        title = route_title(route, titles)
        header = f"{_LOCALITY_TITLE.get(locality, locality.value.upper())} · {title}"
        rows.append(PickerRow(RowKind.HEADER, header, haystack=header.lower()))
        for info in sorted(groups[(locality, route)], key=lambda m: (m.provider, m.ref.model)):
            reason = policy.refusal(info.ref, info.locality)
            if reason is None and not info.available:
                reason = "not available on this route right now"
            if reason is None and not info.can_chat:
                reason = "an embedding model: it cannot chat"
            detail = model_details(info)
            haystack = " ".join(
                x
                for x in (
                    info.ref.model,
                    info.name,
                    str(info.ref),
                    info.provider,
                    info.source,
                    info.node_name or "",
                    title,
                    locality.value,
                )
                if x
            ).lower()
            tip = f"{info.ref}\n{info.provider} · {locality.value}"
            if detail:
                tip += f"\n{detail}"
            if reason:
                tip += f"\nDisabled: {reason}"
            rows.append(
                PickerRow(
                    RowKind.MODEL,
                    info.ref.model,
                    detail=detail,
                    ref=str(info.ref),
                    enabled=reason is None,
                    reason=reason,
                    haystack=haystack,
                    tooltip=tip,
                )
            )
    notes = [(r, error_line(route_title(r, titles), e)) for r, e in listing.errors.items()]
    notes += [
        (r, error_line(route_title(r, titles), f"not asked: {why}"))
        for r, why in listing.skipped.items()
    ]
    for route, text in notes:
        rows.append(PickerRow(RowKind.NOTE, text, haystack=f"{route} {text}".lower(), tooltip=text))
    return rows


def filter_rows(rows: Iterable[PickerRow], text: str) -> list[PickerRow]:
    """Rows whose text matches every word of ``text`` (case-insensitive), with their headers."""
    words = text.lower().split()
    if not words:
        return list(rows)
    out: list[PickerRow] = []
    header: PickerRow | None = None
    for row in rows:
        if row.kind is RowKind.HEADER:
            header = row
            continue
        if all(w in row.haystack for w in words):
            if row.kind is RowKind.MODEL and header is not None:
                out.append(header)
                header = None
            out.append(row)
    return out


# ---- item model and delegate ----------------------------------------------------------------


class PickerModel(QAbstractListModel):
    """The visible rows of the popup. Headers and disabled models are not selectable."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[PickerRow] = []
        self.current_ref: str | None = None

    def set_rows(self, rows: list[PickerRow]) -> None:
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def row_at(self, row: int) -> PickerRow:
        return self._rows[row]

    def rows(self) -> list[PickerRow]:
        return list(self._rows)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row.text
        if role == Qt.ItemDataRole.AccessibleTextRole:
            extra = f", disabled: {row.reason}" if row.reason else ""
            return f"{row.text} {row.detail}{extra}".strip()
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.tooltip or None
        if role == Roles.KIND:
            return int(row.kind)
        if role == Roles.DETAIL:
            return row.detail
        if role == Roles.REF:
            return row.ref
        if role == Roles.REASON:
            return row.reason
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        row = self._rows[index.row()]
        if row.kind is RowKind.MODEL and row.enabled:
            return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return Qt.ItemFlag.NoItemFlags


class PickerDelegate(QStyledItemDelegate):
    """Paints a header in small muted capitals, a model as name + muted details."""

    def __init__(self, model: PickerModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:  # noqa: N802
        h = QFontMetrics(option.font).height()
        return QSize(200, h + 10)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        kind = RowKind(index.data(Roles.KIND))
        text = opt.text
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)

        pal = opt.palette
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        rect: QRect = opt.rect.adjusted(8, 0, -8, 0)
        muted = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.PlaceholderText)
        painter.save()
        font = QFont(opt.font)
        align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft

        if kind is RowKind.HEADER:
            font.setPointSizeF(max(font.pointSizeF() * 0.85, 6.0))
            font.setBold(True)
            font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 105)
            painter.setFont(font)
            painter.setPen(muted)
            painter.drawText(rect.adjusted(0, 4, 0, 0), align, text)
            painter.restore()
            return
        if kind is RowKind.NOTE:
            font.setItalic(True)
            painter.setFont(font)
            painter.setPen(muted)
            fm = QFontMetrics(font)
            painter.drawText(
                rect.adjusted(12, 0, 0, 0),
                align,
                fm.elidedText(text, Qt.TextElideMode.ElideRight, rect.width() - 12),
            )
            painter.restore()
            return

        enabled = index.flags() & Qt.ItemFlag.ItemIsEnabled
        if selected:
            name_color = pal.color(QPalette.ColorRole.HighlightedText)
            detail_color = name_color
        elif enabled:
            name_color = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text)
            detail_color = muted
        else:
            name_color = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
            detail_color = muted
        ref = index.data(Roles.REF)
        is_current = ref is not None and ref == self._model.current_ref
        name_font = QFont(font)
        name_font.setBold(is_current)
        fm = QFontMetrics(name_font)
        name_rect = rect.adjusted(12, 0, 0, 0)
        painter.setFont(name_font)
        painter.setPen(name_color)
        mark = "✓ " if is_current else ""
        # +4: horizontalAdvance rounds down, and elidedText would then drop a character.
        name_w = min(fm.horizontalAdvance(mark + text) + 4, int(name_rect.width() * 0.6))
        painter.drawText(
            QRect(name_rect.left(), name_rect.top(), name_w, name_rect.height()),
            align,
            fm.elidedText(mark + text, Qt.TextElideMode.ElideMiddle, name_w),
        )
        reason = index.data(Roles.REASON)
        detail = f"(disabled: {short_reason(reason)})" if reason else index.data(Roles.DETAIL)
        if detail:
            painter.setFont(font)
            painter.setPen(detail_color)
            dfm = QFontMetrics(font)
            left = name_rect.left() + name_w + 16
            drect = QRect(
                left, name_rect.top(), max(name_rect.right() - left, 0), name_rect.height()
            )
            painter.drawText(
                drect,
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                dfm.elidedText(detail, Qt.TextElideMode.ElideRight, drect.width()),
            )
        painter.restore()


# ---- the popup ----------------------------------------------------------------------------


class ModelPickerPopup(QFrame):
    """The Ctrl+K popup: a filter line on top of the grouped model list.

    Signals:
        sig_picked(str): a model reference was chosen (Enter or click); the popup has closed.
        sig_manage(): "Manage models…" was clicked; the popup has closed.
        sig_refresh(): Refresh (or F5): ask the routes for their models again.
    """

    sig_picked = Signal(str)
    sig_manage = Signal()
    sig_refresh = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Model picker")
        self._all_rows: list[PickerRow] = []
        self._loading = False

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter models by name, provider or node…")
        self.filter_edit.setAccessibleName("Filter models")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("Type to filter · ↑/↓ move · Enter picks · Esc closes")
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.filter_edit.installEventFilter(self)
        self.refresh_button = QToolButton(self)
        self.refresh_button.setText("↻")
        self.refresh_button.setAccessibleName("Refresh the model list")
        self.refresh_button.setToolTip("Ask every route for its models again (F5)")
        self.refresh_button.setAutoRaise(True)
        self.refresh_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.refresh_button.clicked.connect(self.sig_refresh)

        self.model = PickerModel(self)
        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setItemDelegate(PickerDelegate(self.model, self.view))
        self.view.setUniformItemSizes(True)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing always reaches the filter
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setFrameShape(QFrame.Shape.NoFrame)
        self.view.setAccessibleName("Models")
        self.view.setMouseTracking(True)
        self.view.clicked.connect(self._on_clicked)

        self.status_label = QLabel(self)
        self.status_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.status_label.setAccessibleName("Model picker status")
        self.status_label.setContentsMargins(8, 0, 8, 0)
        self.status_label.hide()

        # Getting, inspecting and removing models lives in the Models window.
        self.manage_button = QPushButton("Manage models…  (Ctrl+Shift+M)")
        self.manage_button.setFlat(True)
        self.manage_button.setAccessibleName("Manage models")
        self.manage_button.setToolTip("Pull, inspect and delete models on your Ollama hosts")
        self.manage_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.manage_button.clicked.connect(self._manage)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.refresh_button)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.manage_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.resize(560, 420)

    # ---- data ---------------------------------------------------------------------------

    def set_rows(self, rows: list[PickerRow]) -> None:
        keep = self.selected_ref()
        self._all_rows = rows
        self._apply_filter(self.filter_edit.text(), prefer=keep)

    def set_current(self, ref: str | None) -> None:
        self.model.current_ref = ref
        self.view.viewport().update()

    def set_loading(self, loading: bool) -> None:
        self._loading = loading
        self._update_status()

    def selected_ref(self) -> str | None:
        idx = self.view.currentIndex()
        if idx.isValid() and idx.flags() & Qt.ItemFlag.ItemIsSelectable:
            return idx.data(Roles.REF)
        return None

    def visible_rows(self) -> list[PickerRow]:
        return self.model.rows()

    # ---- showing ------------------------------------------------------------------------

    def popup_below(self, anchor: QWidget) -> None:
        """Open under ``anchor`` with an empty filter and the current model highlighted."""
        self.filter_edit.blockSignals(True)
        self.filter_edit.clear()
        self.filter_edit.blockSignals(False)
        self._apply_filter("", prefer=self.model.current_ref)
        width = max(anchor.width(), 560)
        # As tall as the list needs, within reason: a short list should not float in space.
        row_h = self.view.sizeHintForRow(0) if self.model.rowCount() else 24
        chrome = self.filter_edit.sizeHint().height() + self.manage_button.sizeHint().height() + 28
        if self.status_label.isVisibleTo(self):
            chrome += self.status_label.sizeHint().height() + 4
        height = max(160, min(chrome + row_h * max(self.model.rowCount(), 1) + 4, 460))
        self.resize(width, height)
        pos = anchor.mapToGlobal(QPoint(0, anchor.height()))
        screen = anchor.screen().availableGeometry() if anchor.screen() else None
        if screen is not None:
            pos.setX(max(screen.left(), min(pos.x(), screen.right() - width)))
            if pos.y() + self.height() > screen.bottom():
                pos.setY(max(screen.top(), anchor.mapToGlobal(QPoint(0, 0)).y() - self.height()))
        self.move(pos)
        self.show()  # a Qt.Popup raises itself and takes the keyboard
        self.filter_edit.setFocus(Qt.FocusReason.PopupFocusReason)

    # ---- behaviour -----------------------------------------------------------------------

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.filter_edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                self._step(1 if key == Qt.Key.Key_Down else -1)
                return True
            if key in (Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                page = max(self.view.viewport().height() // max(self.view.sizeHintForRow(0), 1), 1)
                self._step(page if key == Qt.Key.Key_PageDown else -page)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                ref = self.selected_ref()
                if ref is not None:
                    self._pick(ref)
                return True
            if key == Qt.Key.Key_Escape:
                self.close()
                return True
            if key == Qt.Key.Key_F5:
                self.sig_refresh.emit()
                return True
        return super().eventFilter(obj, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)

    def _apply_filter(self, text: str, prefer: str | None = None) -> None:
        visible = filter_rows(self._all_rows, text)
        self.model.set_rows(visible)
        target = -1
        if prefer is not None:
            target = next((i for i, r in enumerate(visible) if r.ref == prefer and r.enabled), -1)
        if target < 0:
            target = next(
                (i for i, r in enumerate(visible) if r.kind is RowKind.MODEL and r.enabled), -1
            )
        if target >= 0:
            self._select(target)
        self._update_status()

    def _update_status(self) -> None:
        text = ""
        if self._loading:
            text = "Loading models…"
        elif not any(r.kind is RowKind.MODEL for r in self._all_rows):
            # Only route errors (or nothing): a filter is not what hides the models.
            text = (
                "No models yet — start Ollama or sign in to halext in Settings (Ctrl+,), "
                "or get one with Manage models below"
            )
        elif not any(r.kind is RowKind.MODEL for r in self.model.rows()):
            text = f"No models match “{self.filter_edit.text().strip()}”"
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def _select(self, row: int) -> None:
        idx = self.model.index(row, 0)
        self.view.setCurrentIndex(idx)
        # Show the group header above the first row too, so the user sees where it is.
        if row > 0 and self.model.row_at(row - 1).kind is RowKind.HEADER:
            self.view.scrollTo(self.model.index(row - 1, 0))
        self.view.scrollTo(idx)

    def _step(self, delta: int) -> None:
        """Move by ``delta`` pickable rows' worth, skipping headers, notes and disabled rows."""
        count = self.model.rowCount()
        if count == 0:
            return
        cur = self.view.currentIndex().row() if self.view.currentIndex().isValid() else -1
        direction = 1 if delta > 0 else -1
        steps = abs(delta)
        pos, last_ok = cur, cur
        while steps > 0:
            pos += direction
            if pos < 0 or pos >= count:
                break
            row = self.model.row_at(pos)
            if row.kind is RowKind.MODEL and row.enabled:
                last_ok = pos
                steps -= 1
        if last_ok >= 0 and last_ok != cur:
            self._select(last_ok)

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.isValid() and index.flags() & Qt.ItemFlag.ItemIsSelectable:
            self._pick(index.data(Roles.REF))

    def _pick(self, ref: str) -> None:
        self.close()
        self.sig_picked.emit(ref)

    def _manage(self) -> None:
        self.close()
        self.sig_manage.emit()


# ---- the header button -----------------------------------------------------------------------


class ModelPickerButton(QToolButton):
    """The header button ("llama3.1:8b · local ▾") that owns the picker popup.

    The lead opens it with Ctrl+K through ``open_popup()``. Choosing a model updates the
    button and emits ``sig_model_chosen``; what to send with it is the caller's decision.

    Signals:
        sig_model_chosen(str): the reference string the user picked.
        sig_manage_models(): "Manage models…" was clicked in the popup.
        sig_refresh_requested(): Refresh (or F5) in the popup.
        sig_current_changed(object): the current model changed, by the user or the app;
            carries the reference, or None.
    """

    sig_model_chosen = Signal(str)
    sig_manage_models = Signal()
    sig_refresh_requested = Signal()
    sig_current_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._listing: ModelListing | None = None
        self._policy = Policy()
        self._titles: dict[str, str] = {}
        self._current: str | None = None
        self._loading = False
        self._infos: dict[str, ModelInfo] = {}

        self.setAccessibleName("Model")
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setMinimumWidth(220)
        self.popup = ModelPickerPopup(self)
        self.popup.sig_picked.connect(self._on_picked)
        self.popup.sig_manage.connect(self.sig_manage_models)
        self.popup.sig_refresh.connect(self.sig_refresh_requested)
        self.clicked.connect(self.open_popup)
        self._render()

    # ---- public API -----------------------------------------------------------------------

    def set_listing(self, listing: ModelListing, policy: Policy) -> None:
        """Show what the routes offer under ``policy`` (refused models stay visible, disabled)."""
        self._listing = listing
        self._policy = policy
        self._infos = {str(m.ref): m for m in listing.models}
        self._loading = False
        self.popup.set_loading(False)
        self.popup.set_rows(build_rows(listing, policy, self._titles))
        self._render()

    def set_policy(self, policy: Policy) -> None:
        """Re-evaluate the rows after a switch changed, without waiting for a new listing."""
        self._policy = policy
        if self._listing is not None:
            self.popup.set_rows(build_rows(self._listing, policy, self._titles))
        self._render()

    def set_route_titles(self, titles: Mapping[str, str]) -> None:
        """What each route is called (see ``route_titles``), e.g. ``local``: the group titles
        and the button's label."""
        self._titles = dict(titles)
        if self._listing is not None:
            self.popup.set_rows(build_rows(self._listing, self._policy, self._titles))
        self._render()

    def set_current(self, ref_str: str | None) -> None:
        changed = (ref_str or None) != self._current
        self._current = ref_str or None
        self.popup.set_current(self._current)
        self._render()
        if changed:
            self.sig_current_changed.emit(self._current)

    def current(self) -> str | None:
        return self._current

    def set_loading(self, loading: bool) -> None:
        self._loading = loading
        self.popup.set_loading(loading)
        self._render()

    def listing(self) -> ModelListing | None:
        return self._listing

    def policy(self) -> Policy:
        return self._policy

    def current_refusal(self) -> str | None:
        """Why the current selection may not be used under the current policy, else None."""
        if self._current is None:
            return None
        try:
            ref = ModelRef.parse(self._current)
        except ModelRefError as exc:
            return str(exc)
        info = self._infos.get(self._current)
        if info is not None:
            locality = info.locality
        elif ref.kind == "halext":
            locality = Locality.CLOUD if halext_model_is_cloud(ref.model) else Locality.SELF_HOSTED
        elif ref.kind == "ollama" and ref.host is None:
            locality = Locality.LOCAL
        else:
            locality = Locality.SELF_HOSTED
        return self._policy.refusal(ref, locality)

    def open_popup(self) -> None:
        self.popup.popup_below(self)

    # ---- internals ------------------------------------------------------------------------

    def _on_picked(self, ref: str) -> None:
        self.set_current(ref)
        self.sig_model_chosen.emit(ref)

    def _render(self) -> None:
        font = self.font()
        refusal = self.current_refusal()
        font.setStrikeOut(refusal is not None)
        self.setFont(font)
        if self._current is None:
            text = "Loading models…" if self._loading else "Choose a model"
            tip = "Choose a model (Ctrl+K)"
        else:
            text = self._label_for(self._current)
            tip = f"{self._current} — change model (Ctrl+K)"
            if refusal is not None:
                text = f"⚠ {text}"
                tip = f"Not allowed now: {refusal}\n{tip}"
        self.setText(f"{text} ▾")
        self.setToolTip(tip)
        self.setAccessibleDescription(tip)

    def _label_for(self, ref_str: str) -> str:
        try:
            ref = ModelRef.parse(ref_str)
        except ModelRefError:
            return ref_str
        info = self._infos.get(ref_str)
        if info is not None:
            locality = info.locality
        elif ref.kind == "ollama":
            locality = Locality.LOCAL
        else:
            locality = Locality.SELF_HOSTED
        return f"{ref.model} · {route_label(ref, locality, self._titles)}"


ModelPicker = ModelPickerButton
"""The picker as the lead refers to it: the button owns its popup."""

"""The providers window: one row per configured route (halext, each Ollama host, each
OpenAI-compatible endpoint) with its health, the models a route offers, and — for a
signed-in halext admin — the server's AI client nodes.

Every check runs on the loop thread through the Bridge (``services.check_route`` and
``services.route_models``; the panel never holds a backend), so a slow or dead server never
freezes the window; each row carries a generation number so a late answer to an older
[Test] cannot overwrite a newer one. Offline mode is honoured before any I/O: halext and
OpenAI-compatible rows say "skipped (offline)" and are not contacted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.route_check import AdminNodes, RouteCheck, RouteInfo
from halext_desktop.routing.types import Health, ModelInfo
from halext_desktop.storage.logfile import see_the_log
from halext_desktop.ui.providers.admin_nodes import AdminNodesBox
from halext_desktop.ui.providers.cells import DOT, bold, item, row_button, table
from halext_desktop.ui.providers.models_list import ModelsList
from halext_desktop.ui.providers.text import time_text
from halext_desktop.ui.status_bar import short_address
from halext_desktop.ui.text import plain
from halext_desktop.ui.theme import css, error_color, muted_text, success_color, warning_color
from halext_desktop.ui.window_close import close_row

if TYPE_CHECKING:
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)

OFFLINE_SKIP = "skipped (offline)"

ROUTE_COLUMNS: tuple[str, ...] = (
    "",
    "Route",
    "Provider",
    "Address",
    "Status",
    "Latency",
    "Version",
    "Models",
    "Last checked",
    "Details",
    "",
)

PROVIDER_NAMES = {"halext": "halext", "ollama": "Ollama", "openai": "OpenAI-compatible"}
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class RouteState(StrEnum):
    UNCHECKED = "not checked"
    CHECKING = "checking…"
    UP = "up"
    DOWN = "down"
    SKIPPED = OFFLINE_SKIP


@dataclass(slots=True)
class RouteRow:
    """One row of the routes table."""

    route_id: str
    kind: str
    address: str
    name: str = ""  # the host's name in the settings, as everywhere else
    state: RouteState = RouteState.UNCHECKED
    check: RouteCheck | None = None
    gen: int = 0


class ProvidersPanel(QWidget):
    """Routes, their health and their models; halext AI client nodes for admins.

    Args:
        services: the app (``routes()``, ``check_route``, ``route_models``, ``policy()``).
        bridge: runs every check on the loop thread.

    Attributes:
        routes_table: one row per route, with [Test] and [Show models].
        models: the models of the route last asked (``ModelsList``).
        nodes: the halext AI client nodes (``AdminNodesBox``), shown to admins only.

    Signals:
        sig_checked(str): a route's check finished (or was skipped) and its row shows it.
        sig_models_shown(str): a route's models are listed (or why they are not).
        sig_nodes_shown(): the admin AI client nodes section was updated.
        sig_manage_models(str): open the Models window at this route (``halext``: its nodes).
    """

    sig_checked = Signal(str)
    sig_models_shown = Signal(str)
    sig_nodes_shown = Signal()
    sig_manage_models = Signal(str)

    def __init__(self, services: Services, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ProvidersPanel")
        self.setWindowTitle("Providers — Halext Desktop")
        self._svc = services
        self._bridge = bridge
        self._rows: list[RouteRow] = []
        self._buttons: dict[str, tuple[QAbstractButton, QAbstractButton]] = {}
        self._manage_buttons: dict[str, QAbstractButton] = {}
        self._models_route: str | None = None
        self._models_gen = 0

        # ---- header ----------------------------------------------------------------------
        title = bold(QLabel("Providers"), 1.35)
        self.summary_label = QLabel("")
        self.summary_label.setObjectName("Muted")
        self.test_all_button = QPushButton("Test all")
        self.test_all_button.setToolTip("Check every route now")
        self.test_all_button.clicked.connect(self.test_all)
        top = QHBoxLayout()
        top.setSpacing(12)
        top.addWidget(title)
        top.addWidget(self.summary_label, 1)
        top.addWidget(self.test_all_button)
        self.offline_label = QLabel(
            "Offline mode is on: only the configured Ollama hosts are contacted."
        )
        self.offline_label.setObjectName("Warning")
        self.offline_label.setVisible(False)

        # ---- routes, models, nodes -------------------------------------------------------
        self.routes_table = table(ROUTE_COLUMNS, stretch="Details")
        self.routes_table.setObjectName("RoutesTable")
        # Failures are long and specific ("Connection refused at … — is `ollama serve`
        # running?"): wrap them rather than cut the useful half off.
        self.routes_table.setWordWrap(True)
        self.routes_table.itemDoubleClicked.connect(self._on_double_click)
        self.models = ModelsList(lambda ref: self._svc.router.refusal(ref))
        self.nodes = AdminNodesBox()
        self.nodes.manage_button.clicked.connect(lambda: self.sig_manage_models.emit("halext"))

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.routes_table)
        self.splitter.addWidget(self.models)
        self.splitter.addWidget(self.nodes)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 1)

        root = QVBoxLayout(self)
        root.setContentsMargins(16, 12, 16, 12)
        root.setSpacing(8)
        root.addLayout(top)
        root.addWidget(self.offline_label)
        root.addWidget(self.splitter, 1)
        bottom, self.close_button = close_row(self, "Providers")
        root.addLayout(bottom)

        self._restyle()
        self.resize(1180, 720)
        self.reload_routes()

    # ---- public API ----------------------------------------------------------------------

    def route_ids(self) -> list[str]:
        return [r.route_id for r in self._rows]

    def row(self, route_id: str) -> RouteRow:
        for r in self._rows:
            if r.route_id == route_id:
                return r
        raise KeyError(route_id)

    def row_texts(self, route_id: str) -> dict[str, str]:
        """The cells of a route's row as shown, by column name ("Status", "Models"...)."""
        i = self._index(route_id)
        out: dict[str, str] = {}
        for c, name in enumerate(ROUTE_COLUMNS):
            cell = self.routes_table.item(i, c)
            if name and cell is not None:
                out[name] = cell.text()
        return out

    def test_button(self, route_id: str) -> QAbstractButton:
        return self._buttons[route_id][0]

    def models_button(self, route_id: str) -> QAbstractButton:
        return self._buttons[route_id][1]

    def manage_button(self, route_id: str) -> QAbstractButton:
        """An Ollama row's [Manage] (pull, delete, model cards in the Models window)."""
        return self._manage_buttons[route_id]

    @property
    def models_route(self) -> str | None:
        """The route whose models are listed (or last asked for)."""
        return self._models_route

    def reload_routes(self) -> None:
        """Rows for the configured routes (after a settings change), keeping the last
        result of routes that are still there."""
        old = {r.route_id: r for r in self._rows}
        rows: list[RouteRow] = []
        for route in self._svc.routes():
            prev = old.get(route.route_id)
            address = short_address(route.base_url)
            if prev is not None and prev.kind == route.kind and prev.address == address:
                prev.name = route.name
                rows.append(prev)
            else:
                rows.append(RouteRow(route.route_id, route.kind, address, route.name))
        self._rows = rows
        offline = self._svc.policy().offline
        self.offline_label.setVisible(offline)
        for r in self._rows:
            if offline and self._skip_reason(r.kind):
                r.state, r.check = RouteState.SKIPPED, None
            elif r.state is RouteState.SKIPPED:
                r.state = RouteState.UNCHECKED
        self._render_routes()

    def test_all(self) -> None:
        """Check every route that policy allows contacting; the others say why not."""
        self.reload_routes()
        for r in self._rows:
            self.test_route(r.route_id)

    def test_route(self, route_id: str) -> None:
        """Check one route on the loop thread; its row says "checking…" meanwhile."""
        r = self.row(route_id)
        r.gen += 1
        gen = r.gen
        if self._skip_reason(r.kind):
            r.state, r.check = RouteState.SKIPPED, None
            self._render_row(r)
            self.sig_checked.emit(route_id)
            return
        if route_id not in self._configured():  # removed from settings meanwhile
            self.reload_routes()
            return
        r.state = RouteState.CHECKING
        self._render_row(r)
        self._bridge.call(
            self._svc.check_route(route_id),
            lambda result: self._on_checked(route_id, gen, result),
            lambda exc: self._on_check_failed(route_id, gen, exc),
            owner=self,
        )

    def show_models(self, route_id: str) -> None:
        """List the route's models below the routes (on the loop thread)."""
        r = self.row(route_id)
        self._models_gen += 1
        gen = self._models_gen
        self._models_route = route_id
        self.models.title.setText(f"Models · {r.name or route_id}")
        if self._skip_reason(r.kind):
            name = PROVIDER_NAMES.get(r.kind, r.kind)
            note = f"{OFFLINE_SKIP} — {name} is not contacted while offline mode is on"
            self.models.set_models([], note, warn=True)
            self.sig_models_shown.emit(route_id)
            return
        if route_id not in self._configured():
            self.reload_routes()
            return
        shown = self.models.models() if self._models_route == route_id else []
        self.models.set_models(shown, "Loading…")
        self._bridge.call(
            self._svc.route_models(route_id),
            lambda models: self._on_models(route_id, gen, models),
            lambda exc: self._on_models_failed(route_id, gen, exc),
            owner=self,
        )

    # ---- results -------------------------------------------------------------------------

    def _on_checked(self, route_id: str, gen: int, result: RouteCheck) -> None:
        try:
            r = self.row(route_id)
        except KeyError:
            return
        if gen != r.gen:
            return  # a newer Test is running for this row
        r.check = result
        r.state = RouteState.UP if result.health.ok else RouteState.DOWN
        self._render_row(r)
        if r.kind == "halext":
            self._show_admin(result.admin)
        self.sig_checked.emit(route_id)

    def _on_check_failed(self, route_id: str, gen: int, exc: BaseException) -> None:
        # A route that is down is a RouteCheck, not an error: this is a route gone from the
        # settings meanwhile, policy, or a bug. Either way the row says it.
        if isinstance(exc, RouteError):
            text = plain(exc.one_line())
        else:
            log.error("checking %s failed", route_id, exc_info=exc)
            text = f"unexpected error ({type(exc).__name__}); {see_the_log()}"
        self._on_checked(
            route_id, gen, RouteCheck(route_id, Health(route_id, ok=False, detail=text))
        )

    def _on_models(self, route_id: str, gen: int, models: list[ModelInfo]) -> None:
        if gen != self._models_gen:
            return
        n = len(models)
        note = f"{n} model{'s' if n != 1 else ''}" if n else "This route offers no models."
        self.models.set_models(models, note)
        self.sig_models_shown.emit(route_id)

    def _on_models_failed(self, route_id: str, gen: int, exc: BaseException) -> None:
        if gen != self._models_gen:
            return
        if isinstance(exc, RouteError):
            text = plain(exc.one_line())
        else:
            log.error("listing %s failed", route_id, exc_info=exc)
            text = f"unexpected error ({type(exc).__name__}); {see_the_log()}"
        self.models.set_models([], text, error=True)
        self.sig_models_shown.emit(route_id)

    def _show_admin(self, admin: AdminNodes | None) -> None:
        self.nodes.show_admin(admin)
        self.sig_nodes_shown.emit()

    def _on_double_click(self, cell: QTableWidgetItem) -> None:
        self.show_models(self._rows[cell.row()].route_id)

    # ---- rendering -----------------------------------------------------------------------

    def _render_routes(self) -> None:
        t = self.routes_table
        # Hide the old button cells at once: they are only deleted later, and a grab or
        # paint in between would show both sets on top of each other.
        for row in range(t.rowCount()):
            old = t.cellWidget(row, len(ROUTE_COLUMNS) - 1)
            if old is not None:
                old.hide()
                t.removeCellWidget(row, len(ROUTE_COLUMNS) - 1)
        t.setRowCount(len(self._rows))
        self._buttons = {}
        self._manage_buttons = {}
        for i, r in enumerate(self._rows):
            test = row_button("Test", f"Check {r.route_id} now")
            models = row_button("Models", f"List the models of {r.route_id}")
            test.clicked.connect(lambda _c=False, rid=r.route_id: self.test_route(rid))
            models.clicked.connect(lambda _c=False, rid=r.route_id: self.show_models(rid))
            holder = QWidget()
            cl = QHBoxLayout(holder)
            cl.setContentsMargins(4, 2, 4, 2)
            cl.setSpacing(4)
            cl.addWidget(test)
            cl.addWidget(models)
            if r.kind == "ollama":
                manage = row_button("Manage", f"Pull, inspect and delete models on {r.route_id}")
                manage.clicked.connect(
                    lambda _c=False, rid=r.route_id: self.sig_manage_models.emit(rid)
                )
                cl.addWidget(manage)
                self._manage_buttons[r.route_id] = manage
            cl.addStretch(1)
            t.setCellWidget(i, len(ROUTE_COLUMNS) - 1, holder)
            self._buttons[r.route_id] = (test, models)
            self._render_row(r, i)
        self._update_summary()

    def _render_row(self, r: RouteRow, i: int | None = None) -> None:
        i = self._index(r.route_id) if i is None else i
        pal = self.palette()
        check = r.check
        h = check.health if check else None
        color = {
            RouteState.UP: success_color(pal),
            RouteState.DOWN: error_color(pal),
        }.get(r.state, muted_text(pal))
        dot = item(DOT, r.state.value)
        dot.setForeground(color)
        dot.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        status = item(r.state.value)
        status.setForeground(
            color if r.state in (RouteState.UP, RouteState.DOWN) else muted_text(pal)
        )
        if r.state is RouteState.SKIPPED:
            detail = "not contacted — offline mode uses only the configured Ollama hosts"
        elif h is not None:
            detail = plain(h.detail)
        elif r.state is RouteState.CHECKING:
            detail = ""
        else:
            detail = "press Test to check"
        models_text, models_tip = "", ""
        if check is not None and check.model_count is not None:
            models_text = str(check.model_count)
        elif check is not None and check.models_note:
            models_text = "—"
            models_tip = check.models_note
        cells = {
            "Route": item(r.name or r.route_id, self._route_tooltip(r)),
            "Provider": item(PROVIDER_NAMES.get(r.kind, r.kind)),
            "Address": item(r.address),
            "Status": status,
            "Latency": item(f"{h.latency_ms} ms" if h and h.latency_ms is not None else ""),
            "Version": item(h.version or "" if h else ""),
            "Models": item(models_text, models_tip),
            "Last checked": item(
                time_text(h.checked_at) if h else "",
                h.checked_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if h else "",
            ),
            "Details": item(detail, detail),
        }
        for name in ("Latency", "Models"):
            cells[name].setTextAlignment(_RIGHT)
        if r.state is RouteState.DOWN:
            cells["Details"].setForeground(error_color(pal))
        elif r.state is RouteState.SKIPPED:
            cells["Details"].setForeground(muted_text(pal))
        t = self.routes_table
        t.setItem(i, 0, dot)
        for c, name in enumerate(ROUTE_COLUMNS):
            if name in cells:
                t.setItem(i, c, cells[name])
        if r.route_id in self._buttons:
            test, _models = self._buttons[r.route_id]
            test.setEnabled(r.state is not RouteState.CHECKING)
        t.resizeRowToContents(i)
        self._update_summary()

    def _route_tooltip(self, r: RouteRow) -> str:
        if r.kind == "halext":
            return "The halext-org server (sign in under Settings → Connections)"
        if r.kind == "ollama":
            return (
                "The default Ollama host (references ollama/<model>)"
                if "@" not in r.route_id
                else f"An Ollama host (references {r.route_id}/<model>)"
            )
        return f"An OpenAI-compatible endpoint (references {r.route_id}/<model>)"

    def _update_summary(self) -> None:
        up = sum(r.state is RouteState.UP for r in self._rows)
        down = sum(r.state is RouteState.DOWN for r in self._rows)
        n = len(self._rows)
        parts = [f"{n} route{'s' if n != 1 else ''}"]
        if up or down:
            parts.append(f"{up} up")
            parts.append(f"{down} down")
        self.summary_label.setText(" · ".join(parts))

    # ---- helpers -------------------------------------------------------------------------

    def _configured(self) -> dict[str, RouteInfo]:
        return {route.route_id: route for route in self._svc.routes()}

    def _skip_reason(self, kind: str) -> str | None:
        return self._svc.policy().route_allowed(kind)

    def _index(self, route_id: str) -> int:
        for i, r in enumerate(self._rows):
            if r.route_id == route_id:
                return i
        raise KeyError(route_id)

    def _restyle(self) -> None:
        # Leaf widgets only: a container with a style sheet stops passing palette changes
        # (light/dark) to its children.
        pal = self.palette()
        muted = f"color: {css(muted_text(pal))};"
        if self.summary_label.styleSheet() != muted:
            self.summary_label.setStyleSheet(muted)
        warn = f"color: {css(warning_color(pal))};"
        if self.offline_label.styleSheet() != warn:
            self.offline_label.setStyleSheet(warn)
        self.models.restyle()
        self.nodes.restyle()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._restyle()
            if self._rows and self.routes_table.rowCount() == len(self._rows):
                for r in self._rows:
                    self._render_row(r)
        super().changeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        # Settings may have changed the routes while the panel was hidden.
        if set(self.route_ids()) != set(self._configured()):
            self.reload_routes()

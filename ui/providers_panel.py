"""The providers panel: one row per configured route (halext, each Ollama host, each
OpenAI-compatible endpoint) with its health, and the models a route offers.

Every check runs on the loop thread through the Bridge, so a slow or dead server never
freezes the window; each row carries a generation number so a late answer to an older
[Test] cannot overwrite a newer one. Offline mode is honoured before any I/O: halext and
OpenAI-compatible rows say "skipped (offline)" and are not contacted.

[Copy ID] puts ``str(info.ref)`` on the clipboard — exactly the reference the model picker
and ``halext-desktop ask --model`` accept.

For a signed-in halext admin the panel also lists the server's AI client nodes
(``GET /admin/ai-clients``), which at upstream a689c6c fails with a plain-text 500 once a
node has been seen; that is said plainly instead of shown as a generic error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.types import Health, Locality, ModelInfo
from halext_desktop.ui.status_bar import short_address
from halext_desktop.ui.theme import css, error_color, muted_text, success_color, warning_color

if TYPE_CHECKING:
    from halext_desktop.routing.backends.base import Backend
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)

ADMIN_LIST_BUG_NOTE = (
    "The halext server failed to list its AI clients (a known server bug when a node has been seen)"
)
OFFLINE_SKIP = "skipped (offline)"
DOT = "●"
# /api/show per model gives context length and capabilities; beyond this many models the
# list shows what /api/tags knows rather than fire a request per model.
MAX_DETAIL_LOOKUPS = 40

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
MODEL_COLUMNS: tuple[str, ...] = (
    "Model",
    "Source",
    "Locality",
    "Size",
    "Parameters",
    "Quantization",
    "Context",
    "Capabilities",
    "Reference",
    "",
)
NODE_COLUMNS: tuple[str, ...] = ("", "Name", "Type", "Address", "Status", "Models", "Last seen")

_PROVIDER_NAMES = {"halext": "halext", "ollama": "Ollama", "openai": "OpenAI-compatible"}


class RouteState(StrEnum):
    UNCHECKED = "not checked"
    CHECKING = "checking…"
    UP = "up"
    DOWN = "down"
    SKIPPED = OFFLINE_SKIP


@dataclass(frozen=True, slots=True)
class AdminNodes:
    """The halext server's AI client nodes, or why they could not be listed."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RouteCheck:
    """What one [Test] learned about a route (made on the loop thread)."""

    route_id: str
    health: Health
    model_count: int | None = None
    models_note: str = ""  # why there is no count ("sign in to list models", the error)
    admin: AdminNodes | None = None  # halext, signed in as an admin


@dataclass(slots=True)
class RouteRow:
    """One row of the routes table."""

    route_id: str
    kind: str
    address: str
    state: RouteState = RouteState.UNCHECKED
    check: RouteCheck | None = None
    gen: int = 0


# ---- work done on the loop thread ---------------------------------------------------------


async def check_route(backend: Backend) -> RouteCheck:
    """Health, then the model count when health does not carry one, then (halext admin)
    the server's AI client nodes. Never raises for a route failure."""
    health = await backend.health()
    count = health.model_count
    note = ""
    if health.ok and count is None:
        try:
            count = len(await backend.list_models())
        except RouteError as err:
            note = (
                "sign in to list models"
                if err.kind in (ErrorKind.SIGNED_OUT, ErrorKind.AUTH_FAILED)
                else err.one_line()
            )
    admin = None
    if health.ok and hasattr(backend, "admin_ai_clients") and health.signed_in_as:
        admin = await admin_nodes(backend)
    return RouteCheck(backend.route_id, health, count, note, admin)


async def admin_nodes(backend: Any) -> AdminNodes | None:
    """The AI client nodes when the signed-in halext user is an admin, else None."""
    try:
        me = await backend.whoami()
    except RouteError:
        return None  # not signed in after all (expired): nothing admin to show
    if not (isinstance(me, dict) and me.get("is_admin")):
        return None
    try:
        nodes = await backend.admin_ai_clients()
    except RouteError as err:
        if err.status is not None and err.status >= 500:
            return AdminNodes([], ADMIN_LIST_BUG_NOTE)
        return AdminNodes([], err.one_line())
    return AdminNodes([n for n in nodes if isinstance(n, dict)])


async def route_models(backend: Backend) -> list[ModelInfo]:
    """The route's models; Ollama ones completed with ``/api/show`` (context length,
    capabilities) when the list is small. Raises RouteError."""
    models = await backend.list_models()
    details = getattr(backend, "model_details", None)
    if details is None or not models or len(models) > MAX_DETAIL_LOOKUPS:
        return models

    async def complete(info: ModelInfo) -> ModelInfo:
        try:
            more: ModelInfo = await details(info.ref.model)
        except RouteError:
            return info  # keep what the list said; one odd model must not hide the rest
        return replace(
            info,
            context_length=info.context_length or more.context_length,
            capabilities=info.capabilities or more.capabilities,
            family=info.family or more.family,
            quantization=info.quantization or more.quantization,
            parameter_size=info.parameter_size or more.parameter_size,
        )

    return list(await asyncio.gather(*(complete(m) for m in models)))


# ---- formatting ---------------------------------------------------------------------------


def size_text(size: int | None) -> str:
    """``4.7 GB`` (decimal units, as ``ollama list`` prints them)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def context_text(ctx: int | None) -> str:
    """``32k`` for 32768, ``128k`` for 131072 or 128000, ``1M``; odd sizes in full."""
    if not ctx:
        return ""
    for unit, big, small in (("M", 1_000_000, 1_048_576), ("k", 1000, 1024)):
        # Vendors use both: 128,000 (OpenAI) and 131,072 (Llama) both read "128k".
        if ctx >= big and ctx % big == 0:
            return f"{ctx // big}{unit}"
        if ctx >= small and ctx % small == 0:
            return f"{ctx // small}{unit}"
    return f"{ctx:,}"


def source_text(info: ModelInfo) -> str:
    if info.node_name:
        latency = f" · {info.latency_ms} ms" if info.latency_ms is not None else ""
        return f"{info.source} · {info.node_name}{latency}"
    return info.source if info.source == info.provider else f"{info.provider} ({info.source})"


def time_text(when: datetime | None) -> str:
    return when.astimezone().strftime("%H:%M:%S") if when else ""


def seen_text(value: Any) -> str:
    """A node's ``last_seen_at`` (ISO, naive = UTC) in local time, or "never"."""
    if not value:
        return "never"
    if not isinstance(value, str):
        return str(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def _item(text: str, tooltip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tooltip:
        item.setToolTip(tooltip)
    return item


def _small_button(text: str, tooltip: str) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tooltip)
    b.setAccessibleName(tooltip)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    return b


def _table(columns: Sequence[str]) -> QTableWidget:
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
    t.horizontalHeader().setHighlightSections(False)
    return t


def _bold(label: QLabel, scale: float = 1.0) -> QLabel:
    f = QFont(label.font())
    f.setBold(True)
    if scale != 1.0:
        f.setPointSizeF(f.pointSizeF() * scale)
    label.setFont(f)
    return label


class ProvidersPanel(QWidget):
    """Routes, their health and their models; halext AI client nodes for admins.

    Args:
        services: the app Core (``router.backends``, ``policy()``).
        bridge: runs every check on the loop thread.

    Signals:
        sig_checked(str): a route's check finished (or was skipped) and its row shows it.
        sig_models_shown(str): a route's models are listed (or why they are not).
        sig_nodes_shown(): the admin AI client nodes section was updated.
    """

    sig_checked = Signal(str)
    sig_models_shown = Signal(str)
    sig_nodes_shown = Signal()

    def __init__(self, services: Services, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ProvidersPanel")
        self.setWindowTitle("Providers — Halext Desktop")
        self._svc = services
        self._bridge = bridge
        self._rows: list[RouteRow] = []
        self._buttons: dict[str, tuple[QPushButton, QPushButton]] = {}
        self._models_route: str | None = None
        self._models_gen = 0
        self._models: list[ModelInfo] = []
        self._copy_buttons: dict[str, QPushButton] = {}
        self.admin_nodes: AdminNodes | None = None
        self._models_note_kind = "muted"

        # ---- header ----------------------------------------------------------------------
        title = _bold(QLabel("Providers"), 1.35)
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

        # ---- routes ----------------------------------------------------------------------
        self.routes_table = _table(ROUTE_COLUMNS)
        self.routes_table.setObjectName("RoutesTable")
        rh = self.routes_table.horizontalHeader()
        for i, name in enumerate(ROUTE_COLUMNS):
            mode = (
                QHeaderView.ResizeMode.Stretch
                if name == "Details"
                else QHeaderView.ResizeMode.ResizeToContents
            )
            rh.setSectionResizeMode(i, mode)
        # Failures are long and specific ("Connection refused at … — is `ollama serve`
        # running?"): wrap them rather than cut the useful half off.
        self.routes_table.setWordWrap(True)
        self.routes_table.itemDoubleClicked.connect(
            lambda item: self.show_models(self._rows[item.row()].route_id)
        )

        # ---- models ----------------------------------------------------------------------
        self.models_title = _bold(QLabel("Models"))
        self.models_note = QLabel("Choose “Show models” on a route to list what it offers.")
        self.models_note.setObjectName("Muted")
        self.models_note.setWordWrap(True)
        self.models_table = _table(MODEL_COLUMNS)
        self.models_table.setObjectName("ModelsTable")
        mh = self.models_table.horizontalHeader()
        for i, name in enumerate(MODEL_COLUMNS):
            mode = (
                QHeaderView.ResizeMode.Stretch
                if name == "Reference"
                else QHeaderView.ResizeMode.ResizeToContents
            )
            mh.setSectionResizeMode(i, mode)
        models_box = QWidget()
        ml = QVBoxLayout(models_box)
        ml.setContentsMargins(0, 6, 0, 0)
        ml.setSpacing(4)
        mt = QHBoxLayout()
        mt.addWidget(self.models_title)
        mt.addWidget(self.models_note, 1)
        ml.addLayout(mt)
        ml.addWidget(self.models_table, 1)

        # ---- admin: AI client nodes ------------------------------------------------------
        self.nodes_box = QFrame()
        self.nodes_box.setObjectName("NodesBox")
        self.nodes_title = _bold(QLabel("halext AI client nodes"))
        self.nodes_title.setToolTip("Self-hosted Ollama nodes registered on the halext server")
        self.nodes_note = QLabel("")
        self.nodes_note.setWordWrap(True)
        self.nodes_table = _table(NODE_COLUMNS)
        self.nodes_table.setObjectName("NodesTable")
        nh = self.nodes_table.horizontalHeader()
        for i, name in enumerate(NODE_COLUMNS):
            mode = (
                QHeaderView.ResizeMode.Stretch
                if name == "Models"
                else QHeaderView.ResizeMode.ResizeToContents
            )
            nh.setSectionResizeMode(i, mode)
        nl = QVBoxLayout(self.nodes_box)
        nl.setContentsMargins(0, 6, 0, 0)
        nl.setSpacing(4)
        nt = QHBoxLayout()
        nt.addWidget(self.nodes_title)
        nt.addWidget(self.nodes_note, 1)
        nl.addLayout(nt)
        nl.addWidget(self.nodes_table, 1)
        self.nodes_box.setVisible(False)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.routes_table)
        self.splitter.addWidget(models_box)
        self.splitter.addWidget(self.nodes_box)
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
            item = self.routes_table.item(i, c)
            if name and item is not None:
                out[name] = item.text()
        return out

    def test_button(self, route_id: str) -> QPushButton:
        return self._buttons[route_id][0]

    def models_button(self, route_id: str) -> QPushButton:
        return self._buttons[route_id][1]

    def copy_button(self, ref: str) -> QPushButton:
        """The [Copy ID] button of the listed model whose reference is ``ref``."""
        return self._copy_buttons[ref]

    @property
    def models_route(self) -> str | None:
        return self._models_route

    def listed_models(self) -> list[ModelInfo]:
        return list(self._models)

    def reload_routes(self) -> None:
        """Rows for the router's current backends (after a settings change), keeping the
        last result of routes that are still there."""
        old = {r.route_id: r for r in self._rows}
        rows: list[RouteRow] = []
        for rid, backend in self._backends().items():
            prev = old.get(rid)
            address = short_address(getattr(backend, "base_url", "") or "")
            if prev is not None and prev.kind == backend.kind and prev.address == address:
                rows.append(prev)
            else:
                rows.append(RouteRow(rid, backend.kind, address))
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
        backend = self._backends().get(route_id)
        if backend is None:  # removed from settings meanwhile
            self.reload_routes()
            return
        r.state = RouteState.CHECKING
        self._render_row(r)
        self._bridge.call(
            check_route(backend),
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
        self.models_title.setText(f"Models · {route_id}")
        if self._skip_reason(r.kind):
            name = _PROVIDER_NAMES.get(r.kind, r.kind)
            note = f"{OFFLINE_SKIP} — {name} is not contacted while offline mode is on"
            self._set_models([], note, warn=True)
            self.sig_models_shown.emit(route_id)
            return
        backend = self._backends().get(route_id)
        if backend is None:
            self.reload_routes()
            return
        self._set_models(self._models if self._models_route == route_id else [], "Loading…")
        self._bridge.call(
            route_models(backend),
            lambda models: self._on_models(route_id, gen, models),
            lambda exc: self._on_models_failed(route_id, gen, exc),
            owner=self,
        )

    def copy_id(self, info: ModelInfo) -> str:
        """Put ``str(info.ref)`` on the clipboard; returns it."""
        text = str(info.ref)
        QGuiApplication.clipboard().setText(text)
        self.models_note.setText(f"Copied {text} — paste it in the model picker or after --model")
        self._style_note(self.models_note, "muted")
        return text

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
        # Backends' health() never raises; this is a bug somewhere, still shown on the row.
        log.error("checking %s failed", route_id, exc_info=exc)
        text = exc.one_line() if isinstance(exc, RouteError) else type(exc).__name__
        self._on_checked(
            route_id, gen, RouteCheck(route_id, Health(route_id, ok=False, detail=text))
        )

    def _on_models(self, route_id: str, gen: int, models: list[ModelInfo]) -> None:
        if gen != self._models_gen:
            return
        n = len(models)
        note = f"{n} model{'s' if n != 1 else ''}" if n else "This route offers no models."
        self._set_models(models, note)
        self.sig_models_shown.emit(route_id)

    def _on_models_failed(self, route_id: str, gen: int, exc: BaseException) -> None:
        if gen != self._models_gen:
            return
        if isinstance(exc, RouteError):
            text = exc.one_line()
        else:
            log.error("listing %s failed", route_id, exc_info=exc)
            text = f"unexpected error ({type(exc).__name__}); see the log"
        self._set_models([], text, error=True)
        self.sig_models_shown.emit(route_id)

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
        for i, r in enumerate(self._rows):
            test = _small_button("Test", f"Check {r.route_id} now")
            models = _small_button("Show models", f"List the models of {r.route_id}")
            test.clicked.connect(lambda _c=False, rid=r.route_id: self.test_route(rid))
            models.clicked.connect(lambda _c=False, rid=r.route_id: self.show_models(rid))
            cell = QWidget()
            cl = QHBoxLayout(cell)
            cl.setContentsMargins(4, 2, 4, 2)
            cl.setSpacing(4)
            cl.addWidget(test)
            cl.addWidget(models)
            t.setCellWidget(i, len(ROUTE_COLUMNS) - 1, cell)
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
        dot = _item(DOT, r.state.value)
        dot.setForeground(color)
        dot.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        status = _item(r.state.value)
        status.setForeground(
            color if r.state in (RouteState.UP, RouteState.DOWN) else muted_text(pal)
        )
        if r.state is RouteState.SKIPPED:
            detail = "not contacted — offline mode uses only the configured Ollama hosts"
        elif h is not None:
            detail = h.detail
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
            "Route": _item(r.route_id, self._route_tooltip(r)),
            "Provider": _item(_PROVIDER_NAMES.get(r.kind, r.kind)),
            "Address": _item(r.address),
            "Status": status,
            "Latency": _item(f"{h.latency_ms} ms" if h and h.latency_ms is not None else ""),
            "Version": _item(h.version or "" if h else ""),
            "Models": _item(models_text, models_tip),
            "Last checked": _item(
                time_text(h.checked_at) if h else "",
                h.checked_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if h else "",
            ),
            "Details": _item(detail, detail),
        }
        for name in ("Latency", "Models"):
            cells[name].setTextAlignment(
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            )
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

    def _set_models(
        self, models: list[ModelInfo], note: str, *, error: bool = False, warn: bool = False
    ) -> None:
        self._models = list(models)
        self.models_note.setText(note)
        self._style_note(self.models_note, "error" if error else "warning" if warn else "muted")
        t = self.models_table
        t.setRowCount(len(models))
        self._copy_buttons = {}
        pal = self.palette()
        router = getattr(self._svc, "router", None)
        for i, info in enumerate(models):
            ref = str(info.ref)
            refusal = router.refusal(info.ref) if router is not None else None
            locality = _item(
                info.locality.value + (" (blocked)" if refusal else ""),
                refusal or "",
            )
            if info.locality is Locality.CLOUD:
                locality.setForeground(warning_color(pal))
            caps = ", ".join(info.capabilities)
            cells = [
                _item(info.name, info.name),
                _item(source_text(info)),
                locality,
                _item(size_text(info.size_bytes)),
                _item(info.parameter_size or ""),
                _item(info.quantization or ""),
                _item(
                    context_text(info.context_length),
                    f"{info.context_length:,} tokens" if info.context_length else "",
                ),
                _item(caps, caps),
                _item(ref, "The exact reference the model picker and --model accept"),
            ]
            cells[3].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            cells[6].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if not info.available:
                for cell in cells:
                    cell.setForeground(muted_text(pal))
            for c, item in enumerate(cells):
                t.setItem(i, c, item)
            copy = _small_button("Copy ID", f"Copy {ref}")
            copy.clicked.connect(lambda _c=False, m=info: self.copy_id(m))
            holder = QWidget()
            hl = QHBoxLayout(holder)
            hl.setContentsMargins(4, 2, 4, 2)
            hl.addWidget(copy)
            t.setCellWidget(i, len(MODEL_COLUMNS) - 1, holder)
            self._copy_buttons[ref] = copy

    def _show_admin(self, admin: AdminNodes | None) -> None:
        self.admin_nodes = admin
        if admin is None:
            self.nodes_box.setVisible(False)
            self.sig_nodes_shown.emit()
            return
        self.nodes_box.setVisible(True)
        pal = self.palette()
        if admin.error:
            self.nodes_note.setText(admin.error)
            self._style_note(self.nodes_note, "warning")
        else:
            n = len(admin.nodes)
            self.nodes_note.setText(
                f"{n} node{'s' if n != 1 else ''} registered on the server (you are an admin)"
                if n
                else "No AI client nodes are registered on the server."
            )
            self._style_note(self.nodes_note, "muted")
        t = self.nodes_table
        t.setVisible(bool(admin.nodes))
        t.setRowCount(len(admin.nodes))
        for i, node in enumerate(admin.nodes):
            raw_caps = node.get("capabilities")
            caps: dict[str, Any] = raw_caps if isinstance(raw_caps, dict) else {}
            raw_models = caps.get("models")
            models: list[Any] = raw_models if isinstance(raw_models, list) else []
            status = str(node.get("status") or "unknown")
            color: QColor = (
                success_color(pal)
                if status == "online"
                else error_color(pal)
                if status in ("offline", "error", "timeout")
                else muted_text(pal)
            )
            dot = _item(DOT, status)
            dot.setForeground(color)
            dot.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            status_item = _item(status)
            status_item.setForeground(color)
            model_text = ", ".join(str(m) for m in models)
            row = [
                dot,
                _item(str(node.get("name") or f"node {node.get('id')}")),
                _item(str(node.get("node_type") or "")),
                _item(str(node.get("base_url") or ""), str(node.get("base_url") or "")),
                status_item,
                _item(model_text, model_text),
                _item(seen_text(node.get("last_seen_at"))),
            ]
            for c, item in enumerate(row):
                t.setItem(i, c, item)
        self.sig_nodes_shown.emit()

    # ---- helpers -------------------------------------------------------------------------

    def _backends(self) -> dict[str, Backend]:
        return dict(self._svc.router.backends)

    def _skip_reason(self, kind: str) -> str | None:
        return self._svc.policy().route_allowed(kind)

    def _index(self, route_id: str) -> int:
        for i, r in enumerate(self._rows):
            if r.route_id == route_id:
                return i
        raise KeyError(route_id)

    def _style_note(self, label: QLabel, kind: str) -> None:
        if label is self.models_note:
            self._models_note_kind = kind
        pal = self.palette()
        color = {
            "error": error_color(pal),
            "warning": warning_color(pal),
        }.get(kind, muted_text(pal))
        sheet = f"color: {css(color)};"
        if label.styleSheet() != sheet:
            label.setStyleSheet(sheet)

    def _restyle(self) -> None:
        # Leaf widgets only: a container with a style sheet stops passing palette changes
        # (light/dark) to its children.
        pal = self.palette()
        muted = f"color: {css(muted_text(pal))};"
        for label in (self.summary_label,):
            if label.styleSheet() != muted:
                label.setStyleSheet(muted)
        warn = f"color: {css(warning_color(pal))};"
        if self.offline_label.styleSheet() != warn:
            self.offline_label.setStyleSheet(warn)
        self._style_note(self.models_note, self._models_note_kind)
        if self.admin_nodes is not None:
            self._style_note(self.nodes_note, "warning" if self.admin_nodes.error else "muted")

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
        if set(self.route_ids()) != set(self._backends()):
            self.reload_routes()


__all__ = [
    "ADMIN_LIST_BUG_NOTE",
    "OFFLINE_SKIP",
    "AdminNodes",
    "ProvidersPanel",
    "RouteCheck",
    "RouteState",
    "check_route",
    "route_models",
]

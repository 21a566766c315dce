"""The Models window: every configured Ollama host on the left (and, for a halext admin,
the server's AI client nodes), the selected one on the right.

```
┌ Models ─────────────────────────────────────────────────────────────────────────────┐
│ OLLAMA HOSTS        │ Ollama local  127.0.0.1:11434    Ollama 0.12.3 · 4 models · … │
│ ● Ollama local  ↓1  │ [ Pull a model …                              ] [Pull]        │
│ ● Ollama studio     │ Downloads …                                                   │
│ HALEXT NODES        │ [Installed] [Loaded]                                          │
│   Studio (node 3)   │  …table…                               │ model card           │
└─────────────────────┴───────────────────────────────────────────────────────────────┘
```

Opened from the model picker, the Providers window and the first-run banner. Closing it
hides it: downloads carry on (``PullQueue``). Pulls and deletes are announced with
``sig_models_changed`` so the main window refreshes the picker and the chat at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.backends.halext_admin import AdminNodeList
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.route_check import RouteInfo
from halext_desktop.ui.models.host_page import InUse, OllamaHostPage, describe_error
from halext_desktop.ui.models.in_flight import InFlight
from halext_desktop.ui.models.jobs import PullJob
from halext_desktop.ui.models.nodes_page import HalextNodePage
from halext_desktop.ui.models.pulls import PullQueue
from halext_desktop.ui.providers.cells import bold, style_note
from halext_desktop.ui.status_bar import short_address

if TYPE_CHECKING:
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.services import Services

_KEY = Qt.ItemDataRole.UserRole + 1  # ("host", route_id) or ("node", node id) or None
OFFLINE_NOTE = "Offline mode is on: only the Ollama hosts are contacted; halext nodes are hidden."


def host_titles(services: Services) -> dict[str, str]:
    """Route id → ``Ollama <name>`` from the configured hosts (first: the default route)."""
    titles: dict[str, str] = {}
    for i, host in enumerate(services.settings.effective_ollama_hosts()):
        titles["ollama" if i == 0 else f"ollama@{host.name}"] = f"Ollama {host.name}"
    return titles


class ModelsWindow(QWidget):
    """Model management for every Ollama host, and halext's nodes for its admins.

    Args:
        services, bridge: the app, and the way to reach it off the GUI thread.
        in_use: why a model reference is in use by an open chat (None when it is not);
            asked before a delete.

    Attributes:
        queue: the pulls of every host.
        hosts: the list on the left.

    Signals:
        sig_models_changed(str): a pull finished or a model was deleted on this route
            (``halext`` for a node).
        sig_pulled(str): the reference of a model a pull just installed.
        sig_use_model(str): the user wants to chat with this reference.
        sig_nodes_shown(): the halext nodes part is up to date (nodes, none, or why not).
    """

    sig_models_changed = Signal(str)
    sig_pulled = Signal(str)
    sig_use_model = Signal(str)
    sig_nodes_shown = Signal()

    def __init__(
        self, services: Services, bridge: Bridge, in_use: InUse, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ModelsWindow")
        self.setWindowTitle("Models — Halext Desktop")
        self._svc = services
        self._bridge = bridge
        self._in_use = in_use
        self.queue = PullQueue(services, bridge, self)
        self._pages: dict[str, OllamaHostPage] = {}
        self._node_pages: dict[int, HalextNodePage] = {}
        self._nodes: AdminNodeList | None = None
        self._nodes_gen = 0
        self._refreshed: set[str] = set()
        self._requests = InFlight(bridge)

        title = bold(QLabel("Models"), 1.35)
        self.subtitle = QLabel("Get, inspect and remove models on your Ollama hosts")
        self.offline_label = QLabel(OFFLINE_NOTE)
        self.offline_label.setVisible(False)
        self.nodes_note = QLabel("")
        self.nodes_note.setWordWrap(True)
        self.nodes_note.hide()
        top = QHBoxLayout()
        top.setSpacing(12)
        top.addWidget(title)
        top.addWidget(self.subtitle, 1)

        self.hosts = QListWidget()
        self.hosts.setObjectName("ModelHosts")
        self.hosts.setAccessibleName("Hosts and nodes")
        self.hosts.setMinimumWidth(200)
        self.hosts.setStyleSheet("QListWidget#ModelHosts::item { padding: 5px 6px; }")
        self.hosts.currentItemChanged.connect(self._on_current)
        self.pages = QStackedWidget()
        self.empty = QLabel("No Ollama host is configured. Add one in Settings → Connections.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.pages.addWidget(self.empty)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.hosts)
        split.addWidget(self.pages)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([220, 1000])
        split.setChildrenCollapsible(False)

        root = QVBoxLayout(self)
        root.setContentsMargins(16, 12, 16, 12)
        root.setSpacing(8)
        root.addLayout(top)
        root.addWidget(self.offline_label)
        root.addWidget(self.nodes_note)
        root.addWidget(split, 1)

        self.queue.sig_finished.connect(self._on_pulled)
        self.queue.sig_added.connect(self._on_job)
        self.queue.sig_changed.connect(self._on_job)
        self.queue.sig_removed.connect(self._on_job)
        self._restyle()
        self.resize(1400, 820)
        self.reload_routes()

    # ---- public API ---------------------------------------------------------------------

    def page(self, route_id: str) -> OllamaHostPage:
        return self._pages[route_id]

    def node_page(self, node_id: int) -> HalextNodePage:
        return self._node_pages[node_id]

    def host_ids(self) -> list[str]:
        return list(self._pages)

    def node_ids(self) -> list[int]:
        return list(self._node_pages)

    def current_page(self) -> QWidget | None:
        return self.pages.currentWidget()

    def select(self, route_id: str | None) -> None:
        """Show an Ollama host (its route id), ``halext`` for the first node, or the first
        host when None."""
        if route_id == "halext":
            if self._node_pages:
                self._select_key(("node", next(iter(self._node_pages))))
            return
        if route_id is None or route_id not in self._pages:
            route_id = next(iter(self._pages), None)
        if route_id is not None:
            self._select_key(("host", route_id))

    def select_node(self, node_id: int) -> None:
        self._select_key(("node", node_id))

    def reload_routes(self) -> None:
        """Follow the configured routes (after a settings change); pages of hosts that are
        still there (same address) keep their state and downloads."""
        routes = [r for r in self._svc.routes() if r.kind == "ollama"]
        titles = host_titles(self._svc)
        keep: dict[str, OllamaHostPage] = {}
        for route in routes:
            page = self._pages.get(route.route_id)
            if page is not None and page.route.base_url == route.base_url:
                page.title.setText(titles.get(route.route_id, page.title.text()))
                keep[route.route_id] = page
                continue
            page = self._make_page(route, titles.get(route.route_id, route.route_id))
            keep[route.route_id] = page
        for rid, page in self._pages.items():
            if keep.get(rid) is not page:
                for job in self.queue.jobs(rid):
                    self.queue.cancel(job)
                self.pages.removeWidget(page)
                page.deleteLater()
                self._refreshed.discard(rid)
        self._pages = keep
        offline = self._svc.policy().offline
        self.offline_label.setVisible(offline)
        self._render_list()
        self.reload_nodes()

    def reload_nodes(self) -> None:
        """Ask (off the GUI thread) whether the signed-in halext user is an admin, and which
        nodes the server has. Ordinary users, signed-out and offline: no nodes part."""
        self._nodes_gen += 1
        gen = self._nodes_gen
        if self._svc.policy().offline or not self._svc.signed_in_user():
            self._show_nodes(gen, None)
            return
        self._requests.call(
            self._svc.admin_nodes(),
            lambda listed: self._show_nodes(gen, listed),
            lambda exc: self._nodes_failed(gen, exc),
            owner=self,
        )

    def shutdown(self) -> list[Future[Any]]:
        """The app is closing: stop the downloads (their streams are closed, so Ollama stops
        and keeps what it got) and send nothing more. Returns the requests still in flight,
        for whoever closes the routes next to wait for."""
        self.queue.shutdown()
        pending = self._requests.shutdown()
        for page in self._all_pages():
            pending += page.shutdown()
        return [f for f in pending if not f.done()]

    # ---- pages --------------------------------------------------------------------------

    def _make_page(self, route: RouteInfo, title: str) -> OllamaHostPage:
        page = OllamaHostPage(route, title, self._svc, self._bridge, self.queue, self._in_use)
        page.sig_models_changed.connect(self.sig_models_changed)
        page.sig_use_model.connect(self.sig_use_model)
        self.pages.addWidget(page)
        return page

    def _make_node_page(self, node_id: int) -> HalextNodePage | None:
        if self._nodes is None:
            return None
        node = next((n for n in self._nodes.nodes if n.id == node_id), None)
        if node is None:
            return None
        page = HalextNodePage(node, self._nodes.note, self._svc, self._bridge, self._in_use)
        page.sig_changed.connect(lambda _id: self.sig_models_changed.emit("halext"))
        page.sig_use_model.connect(self.sig_use_model)
        self.pages.addWidget(page)
        self._node_pages[node_id] = page
        return page

    def _show_nodes(self, gen: int, listed: AdminNodeList | None) -> None:
        if gen != self._nodes_gen:
            return
        self._nodes = listed
        wanted = {n.id for n in listed.nodes} if listed else set()
        for node_id in list(self._node_pages):
            if node_id not in wanted:
                page = self._node_pages.pop(node_id)
                self.pages.removeWidget(page)
                page.deleteLater()
        for node_id in sorted(wanted):
            if node_id not in self._node_pages:
                self._make_node_page(node_id)
        note = listed.note if listed and listed.note else ""
        self.nodes_note.setText(f"halext nodes: {note}" if note else "")
        self.nodes_note.setVisible(bool(note))
        self._render_list()
        self.sig_nodes_shown.emit()

    def _nodes_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._nodes_gen:
            return
        self._nodes = None
        self.nodes_note.setText(f"halext nodes: {describe_error(exc, 'Listing the nodes')}")
        self.nodes_note.setVisible(True)
        self._render_list()
        self.sig_nodes_shown.emit()

    # ---- the list on the left -------------------------------------------------------------

    def _render_list(self) -> None:
        current = self._current_key()
        self.hosts.blockSignals(True)
        self.hosts.clear()
        self._header("OLLAMA HOSTS")
        for rid, page in self._pages.items():
            self._entry(self._host_text(rid, page), page.route.base_url, ("host", rid))
        if self._nodes is not None and self._nodes.nodes:
            self._header("HALEXT NODES (ADMIN)")
            for node in self._nodes.nodes:
                tip = f"{node.base_url} · {node.status}" if node.base_url else node.status
                self._entry(f"{node.name}  ·  node {node.id}", tip, ("node", node.id))
        self.hosts.blockSignals(False)
        if current is not None and self._find(current) is not None:
            self._select_key(current)
        elif self._pages:
            self.select(None)
        else:
            self.pages.setCurrentWidget(self.empty)

    def _host_text(self, route_id: str, page: OllamaHostPage) -> str:
        active = [j for j in self.queue.jobs(route_id) if j.active]
        tail = f"   ↓ {len(active)}" if active else ""
        return f"{page.title.text()}{tail}"

    def _header(self, text: str) -> None:
        entry = QListWidgetItem(text)
        entry.setFlags(Qt.ItemFlag.NoItemFlags)
        font = entry.font()
        font.setBold(True)
        font.setPointSizeF(max(font.pointSizeF() * 0.85, 6.0))
        entry.setFont(font)
        self.hosts.addItem(entry)

    def _entry(self, text: str, tip: str, key: tuple[str, str | int]) -> None:
        entry = QListWidgetItem(text)
        entry.setToolTip(short_address(tip) if tip.startswith("http") else tip)
        entry.setData(_KEY, key)
        self.hosts.addItem(entry)

    def _find(self, key: tuple[str, str | int]) -> QListWidgetItem | None:
        for i in range(self.hosts.count()):
            entry = self.hosts.item(i)
            if entry.data(_KEY) == key:
                return entry
        return None

    def _current_key(self) -> tuple[str, str | int] | None:
        entry = self.hosts.currentItem()
        return entry.data(_KEY) if entry is not None else None

    def _select_key(self, key: tuple[str, str | int]) -> None:
        entry = self._find(key)
        if entry is None:
            return
        if self.hosts.currentItem() is entry:
            self._show_key(key)
        else:
            self.hosts.setCurrentItem(entry)

    def _on_current(self, entry: QListWidgetItem | None, _old: QListWidgetItem | None) -> None:
        if entry is not None and entry.data(_KEY) is not None:
            self._show_key(entry.data(_KEY))

    def _show_key(self, key: tuple[str, str | int]) -> None:
        kind, ident = key
        if kind == "host" and isinstance(ident, str) and ident in self._pages:
            page = self._pages[ident]
            self.pages.setCurrentWidget(page)
            if ident not in self._refreshed and self.isVisible():
                self._refreshed.add(ident)
                page.refresh()
        elif kind == "node" and isinstance(ident, int) and ident in self._node_pages:
            self.pages.setCurrentWidget(self._node_pages[ident])

    # ---- downloads ----------------------------------------------------------------------

    def _on_job(self, job: PullJob) -> None:
        entry = self._find(("host", job.route_id))
        page = self._pages.get(job.route_id)
        if entry is not None and page is not None:
            entry.setText(self._host_text(job.route_id, page))

    def _on_pulled(self, route_id: str, model: str) -> None:
        host = route_id.partition("@")[2] or None
        self.sig_models_changed.emit(route_id)
        self.sig_pulled.emit(str(ModelRef("ollama", host, model)))

    # ---- Qt -----------------------------------------------------------------------------

    def _restyle(self) -> None:
        pal = self.palette()
        style_note(self.subtitle, "muted", pal)
        style_note(self.offline_label, "warning", pal)
        style_note(self.nodes_note, "warning", pal)
        for page in self._all_pages():
            page.restyle()

    def _all_pages(self) -> Iterable[OllamaHostPage | HalextNodePage]:
        yield from self._pages.values()
        yield from self._node_pages.values()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._restyle()
        super().changeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        key = self._current_key()
        if key is not None:
            self._show_key(key)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt override
        # Opened again later, a host is read again (models may have changed meanwhile).
        self._refreshed.clear()
        super().hideEvent(event)

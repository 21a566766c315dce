"""One Ollama host in the Models window: what is installed (with each model's card), pulls
with progress, what is loaded in memory, and starter models when there is nothing yet.

```
Ollama local  127.0.0.1:11434          Ollama 0.12.3 · 4 models · 9.5 GB         [Refresh]
[ Pull a model: name, e.g. llama3.2:3b              ] [Pull]
┌ Downloads ───────────────────────────────────────────────────────────────────────────┐
│ tinyllama   ██████████░░░░░  62 %   395 MB of 638 MB · 12 MB/s · 20 s left  [Cancel] │
└──────────────────────────────────────────────────────────────────────────────────────┘
[Installed] [Loaded]
 Model        Size    Family  Parameters  Quant   Context  Capabilities    Modified │ card
```

Every request goes through the Bridge (``services.route_models``, ``model_card``,
``delete_model``, ``loaded_models``, ``unload_model``; pulls through the shared
``PullQueue``); each answer carries a generation number so a late answer never overwrites
a newer one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QCompleter,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.backends.ollama_models import (
    STARTER_MODELS,
    LoadedModel,
    ModelCard,
)
from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.route_check import RouteCheck, RouteInfo
from halext_desktop.routing.types import ModelInfo
from halext_desktop.routing.units import format_bytes, format_processor, format_until
from halext_desktop.storage.logfile import see_the_log
from halext_desktop.ui.models.card import ModelCardView
from halext_desktop.ui.models.confirm import ConfirmBar
from halext_desktop.ui.models.in_flight import InFlight
from halext_desktop.ui.models.jobs import PullJob
from halext_desktop.ui.models.pull_row import PullRow
from halext_desktop.ui.models.pulls import PullQueue
from halext_desktop.ui.providers.cells import bold, item, small_button, style_note, table
from halext_desktop.ui.providers.text import context_text
from halext_desktop.ui.status_bar import short_address
from halext_desktop.ui.text import plain

if TYPE_CHECKING:
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.services import Services

T = TypeVar("T")
log = logging.getLogger(__name__)

INSTALLED_COLUMNS: tuple[str, ...] = (
    "Model",
    "Size",
    "Family",
    "Params",
    "Quant.",
    "Context",
    "Capabilities",
    "Modified",
)
LOADED_COLUMNS: tuple[str, ...] = ("Model", "Size", "Processor", "VRAM", "Context", "Unloads", "")
# How often the Loaded tab re-reads /api/ps while it is on screen (ms): expiries count down.
LOADED_REFRESH_MS = 5_000
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

InUse = Callable[[str], str | None]


def describe_error(exc: BaseException, what: str) -> str:
    if isinstance(exc, RouteError):
        return plain(exc.one_line())
    log.error("%s failed", what, exc_info=exc)
    return f"{what} failed unexpectedly ({type(exc).__name__}); {see_the_log()}"


def capability_text(capabilities: tuple[str, ...]) -> str:
    """What a model can do beyond plain chat: ``tools, vision``; ``embedding`` for an
    embedding model; ``chat`` when that is all."""
    extra = [c for c in capabilities if c != "completion"]
    if extra:
        return ", ".join(extra)
    return "chat" if "completion" in capabilities else ""


def modified_text(info: ModelInfo) -> str:
    raw = info.extra.get("modified_at")
    if not isinstance(raw, str):
        return ""
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone().strftime("%Y-%m-%d")


class StarterList(QFrame):
    """Small, popular models to pull with one click, for a host that has none.

    Signals:
        sig_pull(str): the model name whose [Pull] was clicked.
    """

    sig_pull = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StarterList")
        self.title = bold(QLabel("This Ollama has no models yet. Start with one of these:"))
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(6)
        for row, starter in enumerate(STARTER_MODELS):
            name = bold(QLabel(starter.name))
            size = QLabel(f"~{format_bytes(starter.size_bytes)}")
            size.setAlignment(_RIGHT)
            params = QLabel(starter.parameters)
            caps = [c for c in starter.capabilities if c != "completion"]
            about = QLabel(starter.description + (f" ({', '.join(caps)})" if caps else ""))
            about.setObjectName("Muted")
            button = small_button(
                "Pull", f"Pull {starter.name} (~{format_bytes(starter.size_bytes)})"
            )
            button.clicked.connect(lambda _c=False, n=starter.name: self.sig_pull.emit(n))
            self.buttons[starter.name] = button
            for col, widget in enumerate((name, size, params, about, button)):
                grid.addWidget(widget, row, col)
        grid.setColumnStretch(3, 1)
        hint = QLabel("Or type any name from ollama.com/library above.")
        hint.setObjectName("Muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(10)
        layout.addWidget(self.title)
        layout.addLayout(grid)
        layout.addWidget(hint)
        layout.addStretch(1)

    def restyle(self) -> None:
        for label in self.findChildren(QLabel):
            if label.objectName() == "Muted":
                style_note(label, "muted", self.palette())


class OllamaHostPage(QWidget):
    """Installed models, pulls, loaded models and model cards of one Ollama host.

    Args:
        route: the host's route (``ollama`` or ``ollama@<name>``) and address.
        title: how the host is called ("Ollama local").
        services, bridge: the app and the way to reach it off the GUI thread.
        queue: the window's pulls (shared by every host page).
        in_use: says why a model reference is in use by an open chat (None when it is not).

    Signals:
        sig_models_changed(str): a model was deleted here (pulls: see PullQueue).
        sig_use_model(str): the user wants to chat with this model reference.
        sig_installed_shown(str): the installed list (or why there is none) is on screen.
        sig_loaded_shown(str): the loaded list (or why there is none) is on screen.
        sig_card_shown(str): the model card of this model name (or its error) is shown.
        sig_deleted(str), sig_unloaded(str): with the model name.
        sig_failed(str): an action failed; one line.
    """

    sig_models_changed = Signal(str)
    sig_use_model = Signal(str)
    sig_installed_shown = Signal(str)
    sig_loaded_shown = Signal(str)
    sig_card_shown = Signal(str)
    sig_deleted = Signal(str)
    sig_unloaded = Signal(str)
    sig_failed = Signal(str)

    def __init__(
        self,
        route: RouteInfo,
        title: str,
        services: Services,
        bridge: Bridge,
        queue: PullQueue,
        in_use: InUse,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("OllamaHostPage")
        self.route = route
        self.route_id = route.route_id
        self._host = route.route_id.partition("@")[2] or None
        self._svc = services
        self._bridge = bridge
        self._queue = queue
        self._in_use = in_use
        self._installed: list[ModelInfo] = []
        self._installed_ok = False
        self._loaded: list[LoadedModel] = []
        self._rows: dict[int, PullRow] = {}
        self._unload_buttons: dict[str, QPushButton] = {}
        self._gen = {"installed": 0, "loaded": 0, "card": 0, "check": 0}
        self._card_model: str | None = None
        self._select_after_load: str | None = None
        self._version: str | None = None
        self._busy: set[str] = set()  # models with a delete or unload in flight
        self._requests = InFlight(bridge)

        # ---- header ------------------------------------------------------------------------
        self.title = bold(QLabel(title), 1.25)
        self.address = QLabel(short_address(route.base_url))
        self.address.setObjectName("Muted")
        self.summary = QLabel("")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read this host's models again")
        self.refresh_button.clicked.connect(self.refresh)
        head = QHBoxLayout()
        head.setSpacing(10)
        head.addWidget(self.title)
        head.addWidget(self.address)
        head.addStretch(1)
        head.addWidget(self.summary)
        head.addWidget(self.refresh_button)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note.hide()

        # ---- pull --------------------------------------------------------------------------
        self.pull_edit = QLineEdit()
        self.pull_edit.setPlaceholderText(
            "Pull a model: a name from ollama.com/library, e.g. llama3.2:3b"
        )
        self.pull_edit.setAccessibleName("Model to pull")
        self.pull_edit.setClearButtonEnabled(True)
        completer = QCompleter([s.name for s in STARTER_MODELS], self.pull_edit)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.pull_edit.setCompleter(completer)
        self.pull_edit.returnPressed.connect(self._pull_typed)
        self.pull_button = QPushButton("Pull")
        self.pull_button.setToolTip("Download this model to the host (Enter)")
        self.pull_button.clicked.connect(self._pull_typed)
        pull_line = QHBoxLayout()
        pull_line.addWidget(self.pull_edit, 1)
        pull_line.addWidget(self.pull_button)

        self.downloads = QFrame()
        self.downloads.setObjectName("Downloads")
        self.downloads_title = bold(QLabel("Downloads"))
        self.downloads_layout = QVBoxLayout(self.downloads)
        self.downloads_layout.setContentsMargins(0, 4, 0, 4)
        self.downloads_layout.setSpacing(4)
        self.downloads_layout.addWidget(self.downloads_title)
        self.downloads.hide()

        self.confirm = ConfirmBar()

        # ---- installed ---------------------------------------------------------------------
        self.installed_table = table(INSTALLED_COLUMNS, stretch="Model")
        self.installed_table.setObjectName("InstalledTable")
        self.installed_table.setAccessibleName("Installed models")
        self.installed_table.currentCellChanged.connect(self._on_current_changed)
        self.installed_table.installEventFilter(self)  # Delete key: delete (asks first)
        self.card = ModelCardView()
        # What can be done with the selected model sits with its card.
        self.use_button = QPushButton("Use in chat")
        self.use_button.setToolTip("Chat with the selected model in the open conversation")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip(
            "Delete the selected model from this host (asks first) — Delete key"
        )
        self.use_button.clicked.connect(self._use_selected)
        self.delete_button.clicked.connect(self._delete_selected)
        actions = QHBoxLayout()
        actions.setContentsMargins(8, 0, 0, 0)
        actions.addWidget(self.use_button)
        actions.addWidget(self.delete_button)
        actions.addStretch(1)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(6)
        sl.addLayout(actions)
        sl.addWidget(self.card, 1)
        self.installed_split = QSplitter(Qt.Orientation.Horizontal)
        self.installed_split.addWidget(self.installed_table)
        self.installed_split.addWidget(side)
        self.installed_split.setStretchFactor(0, 3)
        self.installed_split.setStretchFactor(1, 2)
        self.installed_split.setChildrenCollapsible(False)
        side.setMinimumWidth(340)
        self.installed_split.setSizes([600, 520])
        self.starters = StarterList()
        self.starters.sig_pull.connect(self.pull)
        self.installed_stack = QStackedWidget()
        self.installed_stack.addWidget(self.installed_split)
        self.installed_stack.addWidget(self.starters)

        # ---- loaded ------------------------------------------------------------------------
        self.loaded_table = table(LOADED_COLUMNS, stretch="Model")
        self.loaded_table.setObjectName("LoadedTable")
        self.loaded_table.setAccessibleName("Loaded models")
        self.loaded_note = QLabel("")
        self.loaded_note.setWordWrap(True)
        loaded_page = QWidget()
        ll = QVBoxLayout(loaded_page)
        ll.setContentsMargins(0, 6, 0, 0)
        ll.addWidget(self.loaded_note)
        ll.addWidget(self.loaded_table, 1)
        self._loaded_timer = QTimer(self)
        self._loaded_timer.setInterval(LOADED_REFRESH_MS)
        self._loaded_timer.timeout.connect(self.refresh_loaded)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.installed_stack, "Installed")
        self.tabs.addTab(loaded_page, "Loaded")
        self.tabs.currentChanged.connect(self._on_tab)

        root = QVBoxLayout(self)
        root.setContentsMargins(12, 8, 12, 8)
        root.setSpacing(8)
        root.addLayout(head)
        root.addWidget(self.note)
        root.addLayout(pull_line)
        root.addWidget(self.downloads)
        root.addWidget(self.confirm)
        root.addWidget(self.tabs, 1)

        queue.sig_added.connect(self._on_job_added)
        queue.sig_changed.connect(self._on_job_changed)
        queue.sig_removed.connect(self._on_job_removed)
        queue.sig_finished.connect(self._on_pull_finished)
        for job in queue.jobs(self.route_id):
            self._on_job_added(job)
        self.restyle()

    def _call(
        self,
        coro: Coroutine[Any, Any, T],
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._requests.call(coro, on_done, on_error, owner=self)

    def shutdown(self) -> list[Future[Any]]:
        """The app is closing: send nothing more. Returns the requests still in flight
        (whoever closes the routes next may wait for them)."""
        return self._requests.shutdown()

    # ---- public API ---------------------------------------------------------------------

    def ref(self, model: str) -> str:
        return str(ModelRef("ollama", self._host, model))

    def installed(self) -> list[ModelInfo]:
        return list(self._installed)

    def installed_names(self) -> list[str]:
        return [m.name for m in self._installed]

    def loaded_names(self) -> list[str]:
        return [m.name for m in self._loaded]

    def selected_model(self) -> str | None:
        row = self.installed_table.currentRow()
        return self._installed[row].name if 0 <= row < len(self._installed) else None

    def unload_button(self, model: str) -> QPushButton:
        return self._unload_buttons[model]

    def pull_row(self, model: str) -> PullRow:
        for row in self._rows.values():
            if row.job.same_model(self.route_id, model):
                return row
        raise KeyError(model)

    def pull_rows(self) -> list[PullRow]:
        return list(self._rows.values())

    def refresh(self) -> None:
        """Read the host again: its version, installed models and (when shown) loaded ones."""
        self._check()
        self._load_installed()
        if self.tabs.currentIndex() == 1:
            self.refresh_loaded()

    def pull(self, model: str) -> PullJob | None:
        """Queue a pull of ``model`` on this host (shown under Downloads)."""
        name = model.strip()
        if not name:
            self._say("Type a model name to pull, e.g. llama3.2:3b", "warning")
            return None
        self._say("", "muted")
        return self._queue.enqueue(self.route_id, name)

    def select_model(self, model: str) -> None:
        """Select an installed model (and show its card)."""
        for row, info in enumerate(self._installed):
            if info.name == model:
                self.installed_table.setCurrentCell(row, 0)
                return

    def show_loaded_tab(self) -> None:
        self.tabs.setCurrentIndex(1)

    # ---- header and installed -------------------------------------------------------------

    def _check(self) -> None:
        self._gen["check"] += 1
        gen = self._gen["check"]
        self._call(
            self._svc.check_route(self.route_id),
            lambda result: self._on_checked(gen, result),
            lambda exc: self._on_checked_failed(gen, exc),
        )

    def _on_checked(self, gen: int, result: RouteCheck) -> None:
        if gen != self._gen["check"]:
            return
        h = result.health
        if h.ok:
            self.summary.setText(self._summary_text(h.version))
            style_note(self.summary, "muted", self.palette())
        else:
            self.summary.setText("down")
            style_note(self.summary, "error", self.palette())
            self._say(plain(h.detail), "error")

    def _on_checked_failed(self, gen: int, exc: BaseException) -> None:
        if gen == self._gen["check"]:
            self._say(describe_error(exc, "Checking the host"), "error")

    def _summary_text(self, version: str | None = None) -> str:
        if version is not None:
            self._version = version
        parts = [f"Ollama {self._version}"] if self._version else []
        if self._installed_ok:
            n = len(self._installed)
            total = sum(m.size_bytes or 0 for m in self._installed)
            parts.append(f"{n} model{'s' if n != 1 else ''}")
            if total:
                parts.append(f"{format_bytes(total)} on disk")
        return " · ".join(parts)

    def _load_installed(self) -> None:
        self._gen["installed"] += 1
        gen = self._gen["installed"]
        self.refresh_button.setEnabled(False)
        self._call(
            self._svc.route_models(self.route_id),
            lambda models: self._on_installed(gen, models),
            lambda exc: self._on_installed_failed(gen, exc),
        )

    def _on_installed(self, gen: int, models: list[ModelInfo]) -> None:
        if gen != self._gen["installed"]:
            return
        self.refresh_button.setEnabled(True)
        self._installed = sorted(models, key=lambda m: m.name)
        self._installed_ok = True
        if self.note.property("kind") == "error":
            self._say("", "muted")
        self.summary.setText(self._summary_text())
        self._render_installed()
        self.sig_installed_shown.emit(self.route_id)

    def _on_installed_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._gen["installed"]:
            return
        self.refresh_button.setEnabled(True)
        self._installed = []
        self._installed_ok = False
        self._say(describe_error(exc, "Listing the models"), "error")
        self._render_installed()
        self.sig_installed_shown.emit(self.route_id)

    def _render_installed(self) -> None:
        t = self.installed_table
        keep, self._select_after_load = self._select_after_load or self._card_model, None
        t.blockSignals(True)
        t.setRowCount(len(self._installed))
        for i, info in enumerate(self._installed):
            caps = capability_text(info.capabilities)
            cells = [
                item(info.name, self.ref(info.name)),
                item(
                    format_bytes(info.size_bytes),
                    f"{info.size_bytes:,} bytes" if info.size_bytes else "",
                ),
                item(info.family or ""),
                item(info.parameter_size or ""),
                item(info.quantization or ""),
                item(
                    context_text(info.context_length),
                    f"{info.context_length:,} tokens" if info.context_length else "",
                ),
                item(caps, ", ".join(info.capabilities)),
                item(modified_text(info)),
            ]
            cells[1].setTextAlignment(_RIGHT)
            cells[5].setTextAlignment(_RIGHT)
            for c, cell in enumerate(cells):
                t.setItem(i, c, cell)
        t.blockSignals(False)
        empty = self._installed_ok and not self._installed
        self.installed_stack.setCurrentWidget(self.starters if empty else self.installed_split)
        names = [m.name for m in self._installed]
        if keep in names:
            self.installed_table.setCurrentCell(names.index(keep), 0)
            self._show_card(keep)
        elif names:
            self.installed_table.setCurrentCell(0, 0)
            self._show_card(names[0])
        else:
            self._card_model = None
            self.card.clear()
        self._update_actions()

    def _update_actions(self) -> None:
        name = self.selected_model()
        info = next((m for m in self._installed if m.name == name), None)
        self.use_button.setEnabled(info is not None and info.can_chat)
        self.use_button.setToolTip(
            f"{name} is an embedding model: it cannot chat"
            if info is not None and not info.can_chat
            else "Chat with the selected model in the open conversation"
        )
        self.delete_button.setEnabled(info is not None and info.name not in self._busy)

    def _use_selected(self) -> None:
        name = self.selected_model()
        if name is not None:
            self.sig_use_model.emit(self.ref(name))

    def _delete_selected(self) -> None:
        name = self.selected_model()
        if name is not None:
            self.ask_delete(name)

    def _on_current_changed(self, row: int, _col: int, old_row: int, _old_col: int) -> None:
        self._update_actions()
        if row == old_row or not (0 <= row < len(self._installed)):
            return
        self._show_card(self._installed[row].name)

    # ---- model card -----------------------------------------------------------------------

    def _show_card(self, model: str) -> None:
        if model == self._card_model and self.card.card is not None:
            return
        self._card_model = model
        self._gen["card"] += 1
        gen = self._gen["card"]
        self.card.show_loading(model)
        self._call(
            self._svc.model_card(self.route_id, model),
            lambda card: self._on_card(gen, card),
            lambda exc: self._on_card_failed(gen, model, exc),
        )

    def _on_card(self, gen: int, card: ModelCard) -> None:
        if gen != self._gen["card"]:
            return
        self.card.show_card(card)
        self.sig_card_shown.emit(card.name)

    def _on_card_failed(self, gen: int, model: str, exc: BaseException) -> None:
        if gen != self._gen["card"]:
            return
        self.card.show_error(model, describe_error(exc, "Reading the model card"))
        self.sig_card_shown.emit(model)

    # ---- delete ---------------------------------------------------------------------------

    def ask_delete(self, model: str) -> None:
        """Ask (inline) before deleting; says what it frees and whether a chat uses it."""
        info = next((m for m in self._installed if m.name == model), None)
        frees = (
            f" It frees up to {format_bytes(info.size_bytes)}."
            if info is not None and info.size_bytes
            else ""
        )
        used = self._in_use(self.ref(model))
        self.confirm.ask(
            f"Delete {model} from {self.title.text()}?{frees}",
            "Delete",
            lambda: self._delete(model),
            f"{used} — it will need another model." if used else "",
        )

    def _delete(self, model: str) -> None:
        self._busy.add(model)
        self._update_actions()
        self._say(f"Deleting {model}…", "muted")
        self._call(
            self._svc.delete_model(self.route_id, model),
            lambda freed: self._on_deleted(model, freed),
            lambda exc: self._on_action_failed(model, "Deleting " + model, exc),
        )

    def _on_deleted(self, model: str, freed: int | None) -> None:
        self._busy.discard(model)
        tail = f" — freed up to {format_bytes(freed)}" if freed else ""
        self._say(f"Deleted {model}{tail}.", "muted")
        if self._card_model == model:
            self._card_model = None
        self._load_installed()
        if self.tabs.currentIndex() == 1:
            self.refresh_loaded()
        self.sig_deleted.emit(model)
        self.sig_models_changed.emit(self.route_id)

    def _on_action_failed(self, model: str, what: str, exc: BaseException) -> None:
        self._busy.discard(model)
        self._update_actions()
        button = self._unload_buttons.get(model)
        if button is not None:
            button.setEnabled(True)
        text = describe_error(exc, what)
        self._say(text, "error")
        self.sig_failed.emit(text)

    # ---- loaded ---------------------------------------------------------------------------

    def refresh_loaded(self) -> None:
        self._gen["loaded"] += 1
        gen = self._gen["loaded"]
        self._call(
            self._svc.loaded_models(self.route_id),
            lambda models: self._on_loaded(gen, models),
            lambda exc: self._on_loaded_failed(gen, exc),
        )

    def _on_loaded(self, gen: int, models: list[LoadedModel]) -> None:
        if gen != self._gen["loaded"]:
            return
        self._loaded = models
        n = len(models)
        total = sum(m.size_bytes for m in models)
        vram = sum(m.vram_bytes for m in models)
        if n:
            text = (
                f"{n} model{'s' if n != 1 else ''} in memory · {format_bytes(total)}"
                f" ({format_bytes(vram)} in GPU memory) · Ollama unloads a model after it is "
                "idle for its keep-alive; Unload frees it now"
            )
        else:
            text = "Nothing is loaded: a model loads when a chat uses it."
        self.loaded_note.setText(text)
        style_note(self.loaded_note, "muted", self.palette())
        self._render_loaded()
        self.sig_loaded_shown.emit(self.route_id)

    def _on_loaded_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._gen["loaded"]:
            return
        self._loaded = []
        self.loaded_note.setText(describe_error(exc, "Listing the loaded models"))
        style_note(self.loaded_note, "error", self.palette())
        self._render_loaded()
        self.sig_loaded_shown.emit(self.route_id)

    def _render_loaded(self) -> None:
        t = self.loaded_table
        t.setRowCount(len(self._loaded))
        self._unload_buttons = {}
        now = datetime.now(UTC)
        for i, m in enumerate(self._loaded):
            until = format_until(m.expires_at, now)
            expires = (
                m.expires_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if m.expires_at else ""
            )
            cells = [
                item(m.name, self.ref(m.name)),
                item(format_bytes(m.size_bytes)),
                item(format_processor(m.size_bytes, m.vram_bytes)),
                item(format_bytes(m.vram_bytes)),
                item(f"{m.context_length:,}" if m.context_length else ""),
                item(until, expires),
            ]
            for c in (1, 3, 4):
                cells[c].setTextAlignment(_RIGHT)
            for c, cell in enumerate(cells):
                t.setItem(i, c, cell)
            unload = small_button("Unload", f"Free the memory {m.name} takes now")
            unload.setEnabled(m.name not in self._busy)
            unload.clicked.connect(lambda _c=False, n=m.name: self.unload(n))
            holder = QWidget()
            hl = QHBoxLayout(holder)
            hl.setContentsMargins(4, 2, 4, 2)
            hl.addWidget(unload)
            t.setCellWidget(i, len(LOADED_COLUMNS) - 1, holder)
            self._unload_buttons[m.name] = unload

    def unload(self, model: str) -> None:
        self._busy.add(model)
        button = self._unload_buttons.get(model)
        if button is not None:
            button.setEnabled(False)
        self._call(
            self._svc.unload_model(self.route_id, model),
            lambda _none: self._on_unloaded(model),
            lambda exc: self._on_action_failed(model, "Unloading " + model, exc),
        )

    def _on_unloaded(self, model: str) -> None:
        self._busy.discard(model)
        self.refresh_loaded()
        self.sig_unloaded.emit(model)

    def _on_tab(self, index: int) -> None:
        if index == 1:
            self.refresh_loaded()
            self._loaded_timer.start()
        else:
            self._loaded_timer.stop()

    # ---- pulls ----------------------------------------------------------------------------

    def _pull_typed(self) -> None:
        if self.pull(self.pull_edit.text()) is not None:
            self.pull_edit.clear()

    def _on_job_added(self, job: PullJob) -> None:
        if job.route_id != self.route_id or job.id in self._rows:
            return
        row = PullRow(job)
        row.sig_cancel.connect(self._queue.cancel)
        row.sig_retry.connect(self._queue.retry)
        row.sig_dismiss.connect(self._queue.dismiss)
        row.sig_use.connect(lambda j: self.sig_use_model.emit(self.ref(j.installed_name)))
        self._rows[job.id] = row
        self.downloads_layout.addWidget(row)
        self.downloads.show()
        row.update_from(job, self._queue.waiting_for(job))

    def _on_job_changed(self, job: PullJob) -> None:
        row = self._rows.get(job.id)
        if row is not None:
            row.update_from(job, self._queue.waiting_for(job))

    def _on_job_removed(self, job: PullJob) -> None:
        row = self._rows.pop(job.id, None)
        if row is not None:
            row.hide()
            self.downloads_layout.removeWidget(row)
            row.deleteLater()
        self.downloads.setVisible(bool(self._rows))

    def _on_pull_finished(self, route_id: str, model: str) -> None:
        if route_id == self.route_id:
            # The new model is what the user wants to look at: select it once listed.
            self._select_after_load = model
            self._load_installed()

    # ---- helpers --------------------------------------------------------------------------

    def _say(self, text: str, kind: str) -> None:
        self.note.setText(text)
        self.note.setProperty("kind", kind)
        self.note.setVisible(bool(text))
        style_note(self.note, kind, self.palette())

    def restyle(self) -> None:
        pal = self.palette()
        style_note(self.address, "muted", pal)
        style_note(self.note, str(self.note.property("kind") or "muted"), pal)
        self.starters.restyle()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if (
            obj is self.installed_table
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Delete
        ):
            self._delete_selected()
            return True
        return super().eventFilter(obj, event)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self.tabs.currentIndex() == 1:
            self._loaded_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt override
        self._loaded_timer.stop()
        super().hideEvent(event)
